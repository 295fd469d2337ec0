"""Per-cell series taken out of (and put back into) context and traffic cubes.

A :class:`CellSeries` holds, for a set of grid cells, the cell's context vector (the series'
metadata in DoppelGANger's terms) and its traffic series of one or more services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from appshot_model.core.cube import grid_of, make_traffic_cube
from appshot_model.core.errors import AppshotInputError


@dataclass
class CellSeries:
    """Cells with their context and hourly traffic.

    ``context`` ``[cells, attributes]`` (cube units), ``values`` ``[cells, time, services]``
    (traffic units), ``rows``/``cols`` the cells' grid positions, ``times`` the time stamps."""

    context: np.ndarray
    values: np.ndarray
    attributes: list[str]
    services: list[str]
    rows: np.ndarray
    cols: np.ndarray
    times: pd.DatetimeIndex

    @property
    def n_cells(self) -> int:
        return int(self.values.shape[0])

    def subset(self, cells: np.ndarray) -> "CellSeries":
        """The cells at positions ``cells`` (indices into this set)."""
        cells = np.asarray(cells)
        return CellSeries(self.context[cells], self.values[cells], self.attributes, self.services,
                          self.rows[cells], self.cols[cells], self.times)

    def sample(self, n: int, rng: np.random.Generator) -> "CellSeries":
        """At most ``n`` cells drawn without replacement (kept in grid order)."""
        if n >= self.n_cells:
            return self
        return self.subset(np.sort(rng.choice(self.n_cells, size=n, replace=False)))


def join_cells(cells: Sequence[CellSeries], names: Sequence[str] | None = None) -> CellSeries:
    """The cells of several sets (cities, ``names`` for the messages) as one, in the given order; they must share
    attributes, services and time stamps (one calendar)."""
    if not cells:
        raise AppshotInputError("no cells to join")
    names = [f"set {i}" for i in range(len(cells))] if names is None else list(names)
    first = cells[0]
    for name, other in zip(names[1:], cells[1:], strict=True):
        if other.attributes != first.attributes or other.services != first.services:
            raise AppshotInputError(f"{name} has attributes/services {other.attributes}/{other.services}, "
                                    f"{names[0]} has {first.attributes}/{first.services}")
        if not other.times.equals(first.times):
            raise AppshotInputError(f"{name}'s series starts {other.times[0]} ({len(other.times)} h), "
                                    f"{names[0]}'s {first.times[0]} ({len(first.times)} h): one calendar is needed")
    return CellSeries(np.concatenate([c.context for c in cells]), np.concatenate([c.values for c in cells]),
                      first.attributes, first.services, np.concatenate([c.rows for c in cells]),
                      np.concatenate([c.cols for c in cells]), first.times)


def consecutive_hours(times: Sequence, what: str) -> pd.DatetimeIndex:
    """``times`` as a DatetimeIndex, checked to be consecutive hours (``what`` needs them: names the error)."""
    index = pd.DatetimeIndex(times)
    if len(index) < 1 or not (index[1:] - index[:-1] == pd.Timedelta(hours=1)).all():
        raise AppshotInputError(f"{what} needs consecutive hours, got {len(index)} time stamps from "
                                f"{index[0] if len(index) else 'none'}")
    return index


def cell_series(context: xr.DataArray, traffic: xr.DataArray, services: Sequence[str] | None = None,
                attributes: Sequence[str] | None = None) -> CellSeries:
    """Every cell of a context cube ``[attribute, y, x]`` and a traffic cube ``[time, service, y, x]``
    on the same grid, as a :class:`CellSeries` (``services``/``attributes`` default to all)."""
    if context.shape[1:] != traffic.shape[2:] or not (
            np.allclose(context.x.values, traffic.x.values) and np.allclose(context.y.values, traffic.y.values)):
        raise AppshotInputError(f"context {context.shape[1:]} and traffic {traffic.shape[2:]} are not on one grid")
    services = list(traffic.service.values) if services is None else list(services)
    attributes = list(context.attribute.values) if attributes is None else list(attributes)
    missing = [s for s in services if s not in traffic.service.values]
    if missing:
        raise AppshotInputError(f"services {missing} are not in the traffic cube")
    ctx, rows, cols = context_cells(context, attributes)
    vals = traffic.sel(service=services).values.reshape(traffic.shape[0], len(services), -1)
    return CellSeries(ctx, np.asarray(vals.transpose(2, 0, 1), dtype=np.float64), attributes, services,
                      rows, cols, pd.DatetimeIndex(traffic.time.values))


def context_cells(context: xr.DataArray, attributes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(context ``[cells, attributes]``, rows, cols) of every cell of a context cube, row-major."""
    missing = [a for a in attributes if a not in context.attribute.values]
    if missing:
        raise AppshotInputError(f"context cube lacks attributes {missing}")
    height, width = context.shape[1:]
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    ctx = context.sel(attribute=list(attributes)).values.reshape(len(attributes), -1).T
    return np.asarray(ctx, dtype=np.float64), rows.ravel(), cols.ravel()


def to_traffic_cube(values: np.ndarray, context: xr.DataArray, times: Sequence, services: Sequence[str],
                    units: str, **attrs) -> xr.DataArray:
    """Series ``[cells, time, services]`` of every cell of ``context`` (row-major) as a traffic cube
    ``[time, service, y, x]`` on the context's grid."""
    grid = grid_of(context)
    values = np.asarray(values)
    if values.shape[0] != grid.height * grid.width:
        raise AppshotInputError(f"{values.shape[0]} series for a grid of {grid.height} x {grid.width} cells")
    cube = values.transpose(1, 2, 0).reshape(values.shape[1], values.shape[2], grid.height, grid.width)
    return make_traffic_cube(cube, times, services, grid, units=units, **attrs)
