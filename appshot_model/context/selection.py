"""Attribute selection by Spearman rank correlation (AppShot section III, Table I).

For every training city and service, the Spearman correlation coefficient (SCC) between an
attribute's map and the service's mean weekday peak-hour map is computed over cells; the
average over cities and services is the attribute's score, and attributes whose average
|SCC| reaches a threshold are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import spearmanr

from appshot_model.core.errors import AppshotInputError


def spearman_table(contexts: Mapping[str, np.ndarray], traffic_maps: Mapping[str, np.ndarray],
                   attributes: Sequence[str], services: Sequence[str]) -> pd.DataFrame:
    """SCC per (city, service) row and attribute column.

    contexts: city -> [K, H, W] attribute maps; traffic_maps: city -> [S, H, W] mean traffic maps.
    An attribute that is constant over a city's cells has no defined SCC there (NaN).
    """
    if set(contexts) != set(traffic_maps):
        raise AppshotInputError(
            f"cities with context {sorted(contexts)} differ from cities with traffic {sorted(traffic_maps)}")
    if not contexts:
        raise AppshotInputError("attribute selection needs at least one training city")
    rows = []
    for city in sorted(contexts):
        context, traffic = np.asarray(contexts[city]), np.asarray(traffic_maps[city])
        if context.shape[0] != len(attributes) or traffic.shape[0] != len(services):
            raise AppshotInputError(
                f"city {city!r}: context has {context.shape[0]} layers for {len(attributes)} attributes, "
                f"traffic has {traffic.shape[0]} maps for {len(services)} services")
        if context.shape[1:] != traffic.shape[1:]:
            raise AppshotInputError(f"city {city!r}: context grid {context.shape[1:]} != traffic grid {traffic.shape[1:]}")
        flat_context = context.reshape(len(attributes), -1)
        constant = flat_context.min(axis=1) == flat_context.max(axis=1)
        for s, service in enumerate(services):
            target = traffic[s].ravel()
            scc = np.full(len(attributes), np.nan)
            if target.min() < target.max():
                for k in np.flatnonzero(~constant):
                    scc[k] = spearmanr(flat_context[k], target).statistic
            rows.append({"city": city, "service": service, **dict(zip(attributes, scc, strict=True))})
    return pd.DataFrame(rows).set_index(["city", "service"])


def select_attributes(table: pd.DataFrame, threshold: float) -> tuple[list[str], pd.Series]:
    """Attributes whose average |SCC| over (city, service) rows is >= ``threshold``, in table order.

    Returns the selected names and the per-attribute average SCC (signed, NaN rows skipped).
    """
    if not 0.0 <= threshold < 1.0:
        raise AppshotInputError(f"Spearman threshold must lie in [0, 1), got {threshold}")
    average = table.mean(axis=0, skipna=True)
    average_abs = table.abs().mean(axis=0, skipna=True)
    selected = [name for name in table.columns if np.isfinite(average_abs[name]) and average_abs[name] >= threshold]
    if not selected:
        raise AppshotInputError(
            f"no attribute reaches average |SCC| >= {threshold}; the largest is {average_abs.max():.3f}")
    return selected, average


def cube_scc_table(contexts: Mapping[str, xr.DataArray], snapshots: Mapping[str, xr.DataArray],
                   cities: Sequence[str], attributes: Sequence[str]) -> pd.DataFrame:
    """:func:`spearman_table` of ``cities`` from cubes: each city's context ``[attribute, y, x]`` against the
    mean over time of its snapshots ``[time, service, y, x]`` (services of the first city's snapshots)."""
    attributes = [str(a) for a in attributes]
    services = [str(s) for s in snapshots[cities[0]].service.values]
    return spearman_table({c: contexts[c].sel(attribute=attributes).values for c in cities},
                          {c: snapshots[c].mean(dim="time").transpose("service", "y", "x").sel(service=services).values
                           for c in cities}, attributes, services)
