"""Session expansion: one hour of per-cell, per-service volumes -> one row per transport session.

For each cell of a city-hour (seed 004 §5, models in :mod:`appshot_model.sessions.models`):

1. the cell's load decile is its rank of total volume (all services) among the city's cells in
   that hour (ties share the average rank);
2. arrivals per minute are drawn from the decile's distribution (Gaussian at peak hours,
   Pareto off peak), and each arrival is assigned an app by the apps' session shares; arrivals
   of apps no service maps to are not generated;
3. each session starts uniformly within its minute, draws log10(bytes) from its app's mixture,
   and gets its duration from that drawn volume by the inverted power law (capped);
4. reconciliation: the sessions of a cell x service carry exactly the hour's given volume. Their
   drawn volumes are multiplied by one factor, given / drawn (so the volume distribution keeps
   its shape, shifted by log10 of the factor; durations stay those of the drawn volumes, so the
   factor acts on throughput). A cell x service with volume but no arrival gets one session
   (start uniform in the hour) carrying it all; arrivals in a cell x service whose given volume
   is 0 are dropped. The factors are written to a reconciliation table, which measures how far
   the arrival model's implied volume is from the given one.

Output (Parquet via pyarrow, partitioned ``city=<city>/hour=<hour>``, written one block of
:data:`BLOCK_CELLS` cells at a time so that memory stays bounded):

- ``sessions/.../sessions.parquet``: ``cell_id`` (row * width + col), ``service``, ``app``,
  ``start`` (UTC, ms), ``duration_s``, ``bytes``; sorted by cell then start;
- ``cells/.../cells.parquet`` (GeoParquet): ``cell_id``, ``row``, ``col``, ``load_decile``,
  ``given_bytes``, ``geometry`` (cell squares in the grid CRS);
- ``reconciliation/.../reconciliation.parquet``: per cell x service ``given_bytes``,
  ``drawn_bytes``, ``sessions``, ``forced`` (the single-session case).

The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import rankdata
from tqdm.auto import tqdm

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.io import atomic_path
from appshot_model.core.seeds import derive_seed
from appshot_model.sessions.models import DURATION_CAP_S, SessionModel
from appshot_model.traffic.demo.parameters import DAY_END_HOUR, DAY_START_HOUR

#: Cells per generated block (one Parquet row group); fixed, so that files do not depend on it.
BLOCK_CELLS = 256
MINUTES_PER_HOUR = 60
SECONDS_PER_HOUR = 3600.0
#: Bytes in one hour of 1 bit/s.
BYTES_PER_BIT_S_HOUR = SECONDS_PER_HOUR / 8.0
SESSIONS_FILE, CELLS_FILE, RECONCILIATION_FILE = "sessions.parquet", "cells.parquet", "reconciliation.parquet"
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


@dataclass(frozen=True)
class HourSpec:
    """The hour a snapshot covers: ``city`` and ``hour`` label (partition keys), its naive local start
    time and IANA ``timezone``. Peak hours are 08:00-22:00 local (seed 004 §6.1)."""

    city: str
    hour: str
    start_local: pd.Timestamp
    timezone: str

    @property
    def peak(self) -> bool:
        return DAY_START_HOUR <= self.start_local.hour < DAY_END_HOUR

    @property
    def start_utc(self) -> pd.Timestamp:
        try:
            return pd.Timestamp(self.start_local).tz_localize(self.timezone).tz_convert("UTC")
        except Exception as exc:  # unknown zone, or a local time that does not exist (DST gap)
            raise AppshotInputError(f"cannot place local time {self.start_local} in time zone "
                                    f"{self.timezone!r}: {exc}") from exc

    def partition(self) -> str:
        return f"city={self.city}/hour={self.hour}"


@dataclass
class SessionBlock:
    """Sessions of a block of cells (sorted by cell, then start) and the block's reconciliation."""

    cell_id: np.ndarray       # int32, global cell id
    service: np.ndarray       # int8, index into SessionModel.services
    app: np.ndarray           # int16, index into SessionModel.apps
    start_s: np.ndarray       # float64, seconds from the hour start
    duration_s: np.ndarray    # float32
    bytes: np.ndarray         # float64
    reconciliation: dict[str, np.ndarray]
    dropped_arrivals: int  # arrivals in cell x services whose given volume is 0

    def __len__(self) -> int:
        return int(self.cell_id.shape[0])


def load_deciles(total_volume: np.ndarray) -> np.ndarray:
    """Load decile index (0 = decile 0.1 ... 9 = decile 1.0) of each cell from its rank of total volume."""
    values = np.asarray(total_volume, dtype=float).ravel()
    if values.size == 0:
        raise AppshotInputError("no cells to rank into load deciles")
    quantile = (rankdata(values, method="average") - 0.5) / values.size
    return np.minimum((quantile * 10).astype(np.int64), 9)


def volumes_in_bytes(snapshot: np.ndarray, units: str) -> np.ndarray:
    """Hourly volume ``[service, cells]`` in bytes from a snapshot ``[service, y, x]`` in ``units``."""
    values = np.asarray(snapshot, dtype=np.float64)
    if values.ndim != 3:
        raise AppshotInputError(f"a snapshot must be [service, y, x], got shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise AppshotInputError("snapshot volumes must be finite and >= 0")
    if units == "bit/s":
        values = values * BYTES_PER_BIT_S_HOUR
    elif units != "bytes":
        raise AppshotInputError(f"snapshot units {units!r} cannot be expanded into sessions; expected 'bit/s' "
                                f"(mean over the hour) or 'bytes' (volume of the hour)")
    return values.reshape(values.shape[0], -1)


def iter_session_blocks(model: SessionModel, volumes: np.ndarray, deciles: np.ndarray, peak: bool, seed: int,
                        key: tuple[str | int, ...], cap_s: float = DURATION_CAP_S,
                        cells: np.ndarray | None = None) -> Iterator[SessionBlock]:
    """Sessions of one hour, block by block. ``volumes`` is ``[service, cells]`` in bytes, ``deciles``
    the cells' decile indices; ``key`` names the hour in the seeds (e.g. city, hour); ``cells``
    restricts the expansion to these cell ids (default: all, in order)."""
    n_services, n_cells = volumes.shape
    if n_services != len(model.services):
        raise AppshotInputError(f"volumes have {n_services} services, the session model {len(model.services)}")
    ids = np.arange(n_cells) if cells is None else np.asarray(cells, dtype=np.int64)
    for first in range(0, ids.size, BLOCK_CELLS):
        block_ids = ids[first:first + BLOCK_CELLS]
        rng = np.random.default_rng(derive_seed(seed, "sessions", *key, int(block_ids[0])))
        yield _draw_block(model, rng, volumes[:, block_ids].T, deciles[block_ids], block_ids, peak, cap_s)


def _draw_block(model: SessionModel, rng: np.random.Generator, given: np.ndarray, deciles: np.ndarray,
                cell_ids: np.ndarray, peak: bool, cap_s: float) -> SessionBlock:
    """Sessions of the cells ``cell_ids`` whose given volumes are ``given [cells, services]`` (bytes)."""
    n_cells, n_services = given.shape
    n_apps = len(model.apps)
    counts = model.arrivals.draw_counts(rng, deciles, MINUTES_PER_HOUR, peak)                  # [cells, minutes]
    pvals = np.append(model.app_probability, max(0.0, 1.0 - model.app_probability.sum()))
    per_app = rng.multinomial(counts.ravel(), pvals / pvals.sum())[:, :n_apps]                 # [cells*minutes, apps]
    flat = np.repeat(np.arange(per_app.size), per_app.ravel())
    cell = flat // (MINUTES_PER_HOUR * n_apps)
    minute = (flat // n_apps) % MINUTES_PER_HOUR
    app = flat % n_apps
    start = minute * 60.0 + rng.random(flat.size) * 60.0
    service = model.app_service[app]
    keep = given[cell, service] > 0
    dropped = int((~keep).sum())
    cell, app, start, service = cell[keep], app[keep], start[keep], service[keep]

    # A cell x service with volume but no arrival gets one session carrying all of it.
    present = np.bincount(cell * n_services + service, minlength=n_cells * n_services).reshape(n_cells, n_services)
    forced_cell, forced_service = np.nonzero((given > 0) & (present == 0))
    forced_app = _apps_of_services(model, rng, forced_service)
    cell = np.concatenate([cell, forced_cell])
    app = np.concatenate([app, forced_app])
    service = np.concatenate([service, forced_service])
    start = np.concatenate([start, rng.random(forced_cell.size) * SECONDS_PER_HOUR])
    start = np.floor(start * 1000.0) / 1000.0  # millisecond resolution, as written

    log10_bytes = model.sample_log10_bytes(rng, app)
    duration = model.durations(log10_bytes, app, cap_s)
    drawn_bytes = 10.0 ** log10_bytes
    pair = cell * n_services + service
    drawn = np.bincount(pair, drawn_bytes, n_cells * n_services)
    scale = np.divide(given.ravel(), drawn, out=np.zeros_like(drawn), where=drawn > 0)
    # Sorted by cell, then start (arrivals already come by cell and minute: a stable sort is quick).
    order = np.argsort(cell.astype(np.int64) * 3_600_000 + np.rint(start * 1000.0).astype(np.int64), kind="stable")
    forced = np.zeros((n_cells, n_services), dtype=bool)
    forced[forced_cell, forced_service] = True
    sessions = np.bincount(pair, minlength=n_cells * n_services)
    return SessionBlock(
        cell_id=cell_ids[cell[order]].astype(np.int32), service=service[order].astype(np.int8),
        app=app[order].astype(np.int16), start_s=start[order], duration_s=duration[order].astype(np.float32),
        bytes=(drawn_bytes * scale[pair])[order],
        reconciliation={"cell_id": np.repeat(cell_ids, n_services).astype(np.int32),
                        "service": np.tile(np.arange(n_services), n_cells).astype(np.int8),
                        "load_decile": np.repeat((deciles + 1) / 10.0, n_services).astype(np.float32),
                        "given_bytes": given.ravel(), "drawn_bytes": drawn,
                        "sessions": sessions.astype(np.int32), "forced": forced.ravel()},
        dropped_arrivals=dropped)


def _apps_of_services(model: SessionModel, rng: np.random.Generator, services: np.ndarray) -> np.ndarray:
    """One app per entry of ``services``, drawn by the apps' session shares within the service."""
    apps = np.empty(services.size, dtype=np.int64)
    for index in np.unique(services):
        where = services == index
        candidates = np.flatnonzero(model.app_service == index)
        weights = model.app_probability[candidates] / model.app_probability[candidates].sum()
        apps[where] = rng.choice(candidates, size=int(where.sum()), p=weights)
    return apps


# ------------------------------------------------------------------------------------------
# Writing one city-hour
# ------------------------------------------------------------------------------------------

def session_schema(model: SessionModel, metadata: dict) -> pa.Schema:
    """Schema of the session table, with ``metadata`` as JSON under the ``appshot`` key."""
    return pa.schema([
        ("cell_id", pa.int32()), ("service", pa.dictionary(pa.int8(), pa.string())),
        ("app", pa.dictionary(pa.int16(), pa.string())), ("start", pa.timestamp("ms", tz="UTC")),
        ("duration_s", pa.float32()), ("bytes", pa.float64()),
    ], metadata={"appshot": json.dumps(metadata, sort_keys=True)})


def _session_table(block: SessionBlock, model: SessionModel, schema: pa.Schema, start_ms: int) -> pa.Table:
    services, apps = pa.array(model.services, pa.string()), pa.array(model.apps, pa.string())
    start = start_ms + np.round(block.start_s * 1000.0).astype(np.int64)  # exact: starts are whole ms
    return pa.Table.from_arrays([
        pa.array(block.cell_id), pa.DictionaryArray.from_arrays(pa.array(block.service), services),
        pa.DictionaryArray.from_arrays(pa.array(block.app), apps), pa.array(start, pa.timestamp("ms", tz="UTC")),
        pa.array(block.duration_s), pa.array(block.bytes)], schema=schema)


def _reconciliation_table(block: SessionBlock, model: SessionModel, metadata: dict) -> pa.Table:
    columns = dict(block.reconciliation)
    columns["service"] = pa.DictionaryArray.from_arrays(pa.array(columns["service"]),
                                                        pa.array(model.services, pa.string()))
    table = pa.table(columns)
    return table.replace_schema_metadata({"appshot": json.dumps(metadata, sort_keys=True)})


def partition_paths(root: str | os.PathLike, spec: HourSpec) -> dict[str, Path]:
    """Where the session, cell and reconciliation tables of a city-hour live under ``root``."""
    root = Path(root)
    return {"sessions": root / "sessions" / spec.partition() / SESSIONS_FILE,
            "cells": root / "cells" / spec.partition() / CELLS_FILE,
            "reconciliation": root / "reconciliation" / spec.partition() / RECONCILIATION_FILE}


def write_cell_table(path: Path, grid: Grid, deciles: np.ndarray, given_bytes: np.ndarray, metadata: dict) -> None:
    """GeoParquet of the grid cells with ``cell_id``, ``load_decile`` and the hour's ``given_bytes``."""
    cells = grid.to_geodataframe()
    cells.insert(0, "cell_id", (cells["row"] * grid.width + cells["col"]).astype("int32"))
    cells["load_decile"] = ((deciles + 1) / 10.0).astype("float32")
    cells["given_bytes"] = given_bytes
    with atomic_path(path) as tmp:
        cells.to_parquet(tmp, index=False)  # GeoParquet ("geo" metadata), then our metadata beside it
        table = pq.read_table(tmp)
        table = table.replace_schema_metadata({**table.schema.metadata,
                                               b"appshot": json.dumps(metadata, sort_keys=True).encode()})
        pq.write_table(table, tmp, **PARQUET_OPTIONS)


def expand_hour(model: SessionModel, snapshot: np.ndarray, units: str, grid: Grid, spec: HourSpec,
                out_root: str | os.PathLike, seed: int, label: str, cap_s: float = DURATION_CAP_S,
                progress: bool = False, source: str = "") -> dict:
    """Expand one snapshot ``[service, y, x]`` (``units`` bit/s or bytes) of the hour ``spec`` into
    session, cell and reconciliation tables under ``out_root``; returns a JSON-able summary with
    the row count, speed, session-share errors and the measured volume mismatch."""
    if tuple(snapshot.shape[1:]) != grid.shape:
        raise AppshotInputError(f"snapshot grid {tuple(snapshot.shape[1:])} differs from the grid {grid.shape}")
    started = time.perf_counter()
    volumes = volumes_in_bytes(snapshot, units)
    deciles = load_deciles(volumes.sum(axis=0))
    metadata = {"label": label, "city": spec.city, "hour": spec.hour, "seed": int(seed), "peak": spec.peak,
                "start_utc": spec.start_utc.isoformat(), "timezone": spec.timezone, "source": source,
                "duration_cap_s": cap_s, "coefficients": "seed 004 (Zanella et al., IMC 2023), "
                                                        "nds-group/MobileTrafficDists",
                "units": {"duration_s": "s", "bytes": "bytes", "start": "UTC"}}
    paths = partition_paths(out_root, spec)
    start_ms = int(spec.start_utc.value // 1_000_000)
    n_services, n_cells = volumes.shape
    carried = np.zeros(n_cells)
    sessions_per_service = np.zeros(n_services, dtype=np.int64)
    drawn = np.zeros((n_services, n_cells))
    rows = dropped = forced = 0
    schema = session_schema(model, metadata)
    blocks = iter_session_blocks(model, volumes, deciles, spec.peak, seed, (spec.city, spec.hour), cap_s)
    with atomic_path(paths["sessions"]) as tmp_sessions, atomic_path(paths["reconciliation"]) as tmp_recon:
        with pq.ParquetWriter(tmp_sessions, schema, **PARQUET_OPTIONS) as sessions_out:
            recon_out = None
            for block in tqdm(blocks, total=math.ceil(n_cells / BLOCK_CELLS), disable=not progress,
                              desc=f"sessions {spec.city} {spec.hour}", unit="block"):
                sessions_out.write_table(_session_table(block, model, schema, start_ms))
                recon = _reconciliation_table(block, model, metadata)
                if recon_out is None:
                    recon_out = pq.ParquetWriter(tmp_recon, recon.schema, **PARQUET_OPTIONS)
                recon_out.write_table(recon)
                rows += len(block)
                dropped += block.dropped_arrivals
                forced += int(block.reconciliation["forced"].sum())
                carried += np.bincount(block.cell_id, block.bytes, n_cells)
                sessions_per_service += np.bincount(block.service, minlength=n_services)
                r = block.reconciliation
                drawn[r["service"].astype(np.int64), r["cell_id"]] = r["drawn_bytes"]
            recon_out.close()
    write_cell_table(paths["cells"], grid, deciles, volumes.sum(axis=0), metadata)
    seconds = time.perf_counter() - started
    return {**metadata, "sessions": rows, "cells": n_cells, "seconds": round(seconds, 3),
            "rows_per_s": round(rows / max(seconds, 1e-9)), "forced_sessions": forced, "dropped_arrivals": dropped,
            "paths": {k: str(v) for k, v in paths.items()},
            **volume_mismatch(model, volumes, drawn, carried, deciles, spec.peak),
            **session_share_errors(model, sessions_per_service)}


def volume_mismatch(model: SessionModel, given: np.ndarray, drawn: np.ndarray, carried: np.ndarray,
                    deciles: np.ndarray, peak: bool) -> dict:
    """How far the arrival model's volume is from the given one (``given``, ``drawn``: ``[service, cells]``
    bytes) and how well the written sessions carry the given per-cell volume (``carried``)."""
    mean_bytes = np.array([m.mean_bytes() for m in model.mixtures])
    per_minute = float((model.app_probability * mean_bytes).sum())
    expected = model.arrivals.mean_per_minute(deciles, peak) * MINUTES_PER_HOUR * per_minute
    pairs = given > 0
    log_ratio = np.log10(drawn[pairs] / given[pairs])
    cell_total = given.sum(axis=0)
    cell_error = np.abs(carried - cell_total) / np.where(cell_total > 0, cell_total, 1.0)
    return {
        "given_bytes": float(given.sum()),
        "implied_over_given_expected": float(expected.sum() / given.sum()),
        "implied_over_given_drawn": float(drawn.sum() / given.sum()),
        "implied_over_given_by_service": {s: float(drawn[i].sum() / given[i].sum()) if given[i].sum() > 0 else None
                                          for i, s in enumerate(model.services)},
        "log10_drawn_over_given_quantiles": {str(q): float(np.quantile(log_ratio, q)) for q in
                                             (0.05, 0.25, 0.5, 0.75, 0.95)} if log_ratio.size else {},
        "max_cell_volume_error": float(cell_error.max()),
    }


def session_share_errors(model: SessionModel, sessions_per_service: np.ndarray) -> dict:
    """Session share of each service in the expansion against seed 004's (percentage points)."""
    got = sessions_per_service / max(1, sessions_per_service.sum())
    expected = model.service_session_share()
    return {"session_share": {s: {"expected": float(e), "expanded": float(g), "error_pp": float(100 * (g - e))}
                              for s, e, g in zip(model.services, expected, got, strict=True)},
            "max_session_share_error_pp": float(100 * np.abs(got - expected).max())}
