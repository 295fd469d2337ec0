"""Naive series baseline: a cell's mean weekly profile from its nearest training cell in context
space, plus i.i.d. noise (issue 11's baseline for AC-L1).

Fit: for every training cell and service, the mean traffic per hour of the week (168 values,
from the time stamps) and the standard deviation of the residual around it. Generate: each
target cell takes the profile and the residual std of the training cell closest to it in
context space (Euclidean distance between standardised ``log(1 + context)`` vectors, see
:class:`ContextScaler`), repeats the profile along the target time stamps and adds Gaussian
noise with that std, independently per hour; values below 0 are clipped to 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from appshot_model.core.errors import AppshotInputError
from appshot_model.series.data import CellSeries

HOURS_PER_WEEK = 168


@dataclass
class ContextScaler:
    """``log(1 + max(context, 0))`` standardised with the training cells' mean and std."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, context: np.ndarray) -> "ContextScaler":
        logs = np.log1p(np.clip(np.asarray(context, dtype=np.float64), 0.0, None))
        std = logs.std(axis=0)
        return cls(logs.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, context: np.ndarray) -> np.ndarray:
        logs = np.log1p(np.clip(np.asarray(context, dtype=np.float64), 0.0, None))
        if logs.shape[-1] != self.mean.size:
            raise AppshotInputError(f"context has {logs.shape[-1]} attributes, the scaler was fitted on {self.mean.size}")
        return (logs - self.mean) / self.std


def hour_of_week(times: Sequence) -> np.ndarray:
    """Hour of the week (0 = Monday 00:00 .. 167) of each time stamp."""
    index = pd.DatetimeIndex(times)
    return np.asarray(index.day_of_week * 24 + index.hour)


@dataclass
class WeeklyProfileModel:
    """Fitted naive baseline: training cells' standardised context, weekly profiles
    ``[cells, 168, services]`` (NaN where an hour of the week was never seen) and residual std
    ``[cells, services]``."""

    scaler: ContextScaler
    features: np.ndarray
    profiles: np.ndarray
    noise_std: np.ndarray
    services: list[str]


def fit_weekly_profile(train: CellSeries) -> WeeklyProfileModel:
    """Weekly profile and residual noise level of every training cell."""
    how = hour_of_week(train.times)
    profiles = np.full((train.n_cells, HOURS_PER_WEEK, len(train.services)), np.nan)
    for h in np.unique(how):
        profiles[:, h] = train.values[:, how == h].mean(axis=1)
    residual = train.values - profiles[:, how]
    scaler = ContextScaler.fit(train.context)
    return WeeklyProfileModel(scaler, scaler.transform(train.context), profiles, residual.std(axis=1),
                              list(train.services))


def nearest_training_cells(model: WeeklyProfileModel, context: np.ndarray) -> np.ndarray:
    """Index of the nearest training cell (context space) for each row of ``context``."""
    target = model.scaler.transform(context)
    d2 = (target ** 2).sum(1)[:, None] - 2 * target @ model.features.T + (model.features ** 2).sum(1)[None]
    return np.argmin(d2, axis=1)


def generate_weekly_profile(model: WeeklyProfileModel, context: np.ndarray, times: Sequence,
                            seed: int) -> np.ndarray:
    """Series ``[cells, time, services]`` for target cells with ``context`` ``[cells, attributes]``."""
    how = hour_of_week(times)
    nearest = nearest_training_cells(model, context)
    base = model.profiles[nearest][:, how]
    if np.isnan(base).any():
        raise AppshotInputError("the target time stamps hold hours of the week never seen in training")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(base.shape) * model.noise_std[nearest][:, None, :]
    return np.clip(base + noise, 0.0, None)
