"""The "Data" reference and per-city scoring of the leave-one-city-out evaluation (paper §VI-§VII).

- :func:`data_reference` scores one half of a city's real weekday snapshots against the other half
  with :func:`appshot_model.evaluation.metrics.score` (paper: 30 weekdays split into two sets of 15),
  i.e. the day-to-day variability a perfect generator would still show.
- :func:`evaluate_city` scores every method's samples for one held-out city and hour, plus "data".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from appshot_model.evaluation.metrics import score

DATA = "data"
#: Extra per-city numbers :func:`appshot_model.evaluation.metrics.score` returns, kept in the tables.


def split_snapshots(real_snapshots: np.ndarray, split: str = "halves") -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint, equally sized sets of a city's snapshots ``[t, s, y, x]`` (time order):
    ``"halves"`` = first vs second half (the paper's two sets of 15 weekdays), ``"alternate"`` = even
    vs odd days. With an odd ``t`` the last snapshot is left out."""
    real = np.asarray(real_snapshots)
    if real.ndim != 4 or real.shape[0] < 2:
        raise ValueError(f"the Data reference needs >= 2 snapshots [t, s, y, x], got shape {real.shape}")
    half = real.shape[0] // 2
    if split == "halves":
        return real[:half], real[half:2 * half]
    if split == "alternate":
        return real[0:2 * half:2], real[1:2 * half:2]
    raise ValueError(f"split must be 'halves' or 'alternate', got {split!r}")


def data_reference(real_snapshots: np.ndarray, split: str = "halves", **score_kwargs) -> dict[str, float]:
    """Score the first set of real snapshots (as "real") against the second (as "generated"), with
    the same :func:`~appshot_model.evaluation.metrics.score` and options as the methods."""
    first, second = split_snapshots(real_snapshots, split)
    return score(first, second, **score_kwargs)


def evaluate_city(real_snapshots: np.ndarray, generated: Mapping[str, np.ndarray], city: str, hour: str,
                  include_data: bool = True, split: str = "halves", **score_kwargs) -> list[dict]:
    """Records ``{"method", "city", "hour", metrics...}`` for each method's samples ``[n, s, y, x]``
    against the city's real snapshots ``[t, s, y, x]`` (and the "data" reference)."""
    records = []
    score_kwargs.setdefault("emd_cache", {})  # EMD(real map, uniform) is shared by all methods
    if include_data:
        records.append({"method": DATA, "city": city, "hour": hour,
                        **data_reference(real_snapshots, split=split, **score_kwargs)})
    for method, samples in generated.items():
        records.append({"method": method, "city": city, "hour": hour,
                        **score(real_snapshots, samples, **score_kwargs)})
    return records
