"""Normalisation of traffic and context (AppShot §V-B2).

Traffic: each service is divided by its global per-pixel maximum over the training snapshots
plus a small epsilon (§V-B2), so every service lies in [0, 1] and matches the generator's
sigmoid output; denormalising multiplies back.

Context (the paper only says "normalised per attribute"): counts with heavy tails (population,
PoI counts, road lengths) are first compressed with ``log1p`` so a few dense cells do not squash
every other cell towards 0, then every attribute is divided by its maximum over the training
cities (+ epsilon). Land-use area fractions are already in [0, 1] and are only scaled. An
attribute unknown to :mod:`appshot_model.core.names` is log-compressed when its training maximum
exceeds 1 (it cannot be a fraction). Values of unseen cities may exceed 1; that is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import LANDUSE_ATTRIBUTES

DEFAULT_EPSILON = 1e-6


@dataclass
class Normalisation:
    """Per-service traffic maxima and per-attribute context scaling, fitted on training data."""

    services: list[str]
    attributes: list[str]
    traffic_max: list[float]
    context_scale: list[float]
    epsilon: float = DEFAULT_EPSILON
    context_log1p: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.context_log1p:
            self.context_log1p = [False] * len(self.attributes)
        for name, values, expected in (("traffic_max", self.traffic_max, self.services),
                                       ("context_scale", self.context_scale, self.attributes),
                                       ("context_log1p", self.context_log1p, self.attributes)):
            if len(values) != len(expected):
                raise AppshotInputError(f"normalisation field {name!r} has {len(values)} values, "
                                        f"expected one per entry of {expected}")
        if any(not v > 0 for v in self.traffic_max + self.context_scale):
            raise AppshotInputError("normalisation traffic_max/context_scale must all be > 0")

    def _traffic_scale(self) -> np.ndarray:
        """Maxima shaped to broadcast over ``[..., S, H, W]``."""
        return np.asarray(self.traffic_max, dtype=np.float32)[:, None, None]

    def normalise_traffic(self, traffic: np.ndarray) -> np.ndarray:
        """``traffic [..., S, H, W]`` in data units -> [0, 1] per service."""
        self._check_channels(traffic, len(self.services), "traffic services")
        return (np.asarray(traffic, dtype=np.float32) / self._traffic_scale()).astype(np.float32)

    def denormalise_traffic(self, traffic: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalise_traffic`."""
        self._check_channels(traffic, len(self.services), "traffic services")
        return (np.asarray(traffic, dtype=np.float32) * self._traffic_scale()).astype(np.float32)

    def normalise_context(self, context: np.ndarray) -> np.ndarray:
        """``context [K, H, W]`` (attributes in this object's order) -> scaled, float32."""
        self._check_channels(context, len(self.attributes), "context attributes")
        out = np.asarray(context, dtype=np.float32).copy()
        logged = np.asarray(self.context_log1p, dtype=bool)
        out[..., logged, :, :] = np.log1p(np.maximum(out[..., logged, :, :], 0.0))
        return (out / np.asarray(self.context_scale, dtype=np.float32)[:, None, None]).astype(np.float32)

    def service_weights(self) -> np.ndarray:
        """Each service's share of the summed maxima: the normalised maps weighted by these sum to
        total traffic divided by ``sum(traffic_max)`` (what D2 sees)."""
        top = np.asarray(self.traffic_max, dtype=np.float64)
        return (top / top.sum()).astype(np.float32)

    def to_dict(self) -> dict:
        """JSON-able constants."""
        return {"services": list(self.services), "attributes": list(self.attributes),
                "traffic_max": [float(v) for v in self.traffic_max],
                "context_scale": [float(v) for v in self.context_scale],
                "context_log1p": [bool(v) for v in self.context_log1p], "epsilon": float(self.epsilon)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Normalisation:
        """Rebuild from :meth:`to_dict` output; unknown keys (e.g. ``hour``) are ignored."""
        missing = [k for k in ("services", "attributes", "traffic_max", "context_scale") if k not in data]
        if missing:
            raise AppshotInputError(f"normalisation constants lack fields {missing}; got {sorted(data)}")
        return cls(services=[str(s) for s in data["services"]], attributes=[str(a) for a in data["attributes"]],
                   traffic_max=[float(v) for v in data["traffic_max"]],
                   context_scale=[float(v) for v in data["context_scale"]],
                   epsilon=float(data.get("epsilon", DEFAULT_EPSILON)),
                   context_log1p=[bool(v) for v in data.get("context_log1p", [])])

    @staticmethod
    def _check_channels(array: np.ndarray, expected: int, what: str) -> None:
        if array.ndim < 3 or array.shape[-3] != expected:
            raise AppshotInputError(f"array of shape {array.shape} does not have {expected} {what} "
                                    f"on axis -3 as the normalisation expects")


def fit_normalisation(traffic: Sequence[np.ndarray], contexts: Sequence[np.ndarray], services: Sequence[str],
                      attributes: Sequence[str], epsilon: float = DEFAULT_EPSILON) -> Normalisation:
    """Fit on training cities: ``traffic`` arrays ``[T, S, H, W]`` and ``contexts`` ``[K, H, W]``."""
    if not traffic or len(traffic) != len(contexts):
        raise AppshotInputError(f"need one context per traffic array and at least one city; got "
                                f"{len(traffic)} traffic and {len(contexts)} context arrays")
    services, attributes = [str(s) for s in services], [str(a) for a in attributes]
    for i, (t, c) in enumerate(zip(traffic, contexts, strict=True)):
        if t.ndim != 4 or t.shape[1] != len(services):
            raise AppshotInputError(f"traffic array {i} has shape {t.shape}, expected [time, {len(services)}, H, W]")
        if c.ndim != 3 or c.shape[0] != len(attributes):
            raise AppshotInputError(f"context array {i} has shape {c.shape}, expected [{len(attributes)}, H, W]")
    top = np.max([np.asarray(t, dtype=np.float64).max(axis=(0, 2, 3)) for t in traffic], axis=0)
    raw_max = np.max([np.asarray(c, dtype=np.float64).max(axis=(1, 2)) for c in contexts], axis=0)
    log1p = [a not in LANDUSE_ATTRIBUTES and (a.startswith(("population", "poi_")) or m > 1.0)
             for a, m in zip(attributes, raw_max, strict=True)]
    scaled_max = np.where(log1p, np.log1p(np.maximum(raw_max, 0.0)), raw_max)
    return Normalisation(services=services, attributes=attributes,
                         traffic_max=[float(v) + epsilon for v in top],
                         context_scale=[float(max(v, 0.0)) + epsilon for v in scaled_max],
                         epsilon=epsilon, context_log1p=[bool(v) for v in log1p])


def fit_normalisation_to_cubes(contexts: Mapping[str, xr.DataArray], snapshots: Mapping[str, xr.DataArray],
                               cities: Sequence[str], attributes: Sequence[str]) -> Normalisation:
    """:func:`fit_normalisation` on ``cities`` from cubes: context ``[attribute, y, x]`` (``attributes`` in
    order) and snapshots ``[time, service, y, x]`` (services of the first city's snapshots)."""
    services = [str(s) for s in snapshots[cities[0]].service.values]
    return fit_normalisation([snapshots[c].transpose("time", "service", "y", "x").sel(service=services).values
                              for c in cities],
                             [contexts[c].sel(attribute=list(attributes)).values for c in cities], services, attributes)
