"""Small helpers shared by asset modules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

import numpy as np
import xarray as xr
from dagster import AllPartitionMapping, AssetIn, MultiPartitionKey

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.privacy import split_days

T = TypeVar("T")
#: Input metadata: hand the (multi-)partition values to the asset as ``{partition key: value}``.
ALL_AS_DICT = {"as_dict": True}
#: Input metadata key: the input is None while the upstream asset has never been materialised.
OPTIONAL_INPUT = "optional"


def every_city_cube() -> dict[str, AssetIn]:
    """Inputs ``context_cube`` and ``traffic_cube`` of every city, as ``{city: cube}`` (for models trained once
    on all training cities)."""
    return {name: AssetIn(partition_mapping=AllPartitionMapping(), metadata=ALL_AS_DICT)
            for name in ("context_cube", "traffic_cube")}


def by_city(values: Mapping[str, T]) -> dict[str, T]:
    """Re-key partition-keyed inputs (``city`` or ``city|hour`` keys) by city name."""
    result: dict[str, T] = {}
    for key, value in values.items():
        city = key.keys_by_dimension["city"] if isinstance(key, MultiPartitionKey) else str(key)
        result[city] = value
    return result


def training_cities(all_cities: Iterable[str], held_out: Iterable[str]) -> list[str]:
    """Cities used for fitting: all minus the held-out ones (unknown held-out names are an error)."""
    all_cities = sorted(all_cities)
    held_out = list(held_out)
    unknown = [c for c in held_out if c not in all_cities]
    if unknown:
        raise AppshotInputError(f"held_out_cities {unknown} are not cities of this deployment: {all_cities}")
    kept = [c for c in all_cities if c not in held_out]
    if not kept:
        raise AppshotInputError("every city is held out; at least one training city is needed")
    return kept


def training_days(snapshots: xr.DataArray, city: str, seed: int, holdout_fraction: float,
                  members: bool = True) -> xr.DataArray:
    """The city's weekday snapshots on member dates (used for fitting), or with ``members=False`` on the
    dates held out for the privacy gate; the same dates for every peak hour of the city."""
    mask = split_days(snapshots["time"].values, holdout_fraction, derive_seed(seed, "privacy-holdout", city))
    return snapshots.isel(time=np.flatnonzero(mask if members else ~mask))
