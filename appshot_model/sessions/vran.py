"""Use case 2 of seed 004 (§6.2): energy of the physical servers (PS) of a virtualised RAN.

Servers as in seed 004 §6.2.1: 100 Mbps of traffic at full load, drawing 60 W when on and idle,
rising linearly to 200 W at full load. Each minute the cells' throughput (one radio unit per grid
cell) is packed onto servers by **first-fit decreasing** (cells sorted by throughput, each put on
the first open server with room, a new server opened otherwise); servers left empty are off.
A cell above 100 Mbps gets a server of its own, which is overloaded (it draws 200 W).

Three demands are compared over a day (``demand`` column of the result):

- ``sessions``: per-minute throughput from the session expansion of every hour, packed each minute;
- ``smooth``: each hour's volume spread evenly over its minutes (what an hourly traffic map
  gives), packed each minute;
- ``smooth_placement``: servers placed once per hour on the smooth demand, then loaded with the
  session-level per-minute throughput: the overload an hourly plan meets at session level.

Energy is in kWh over the day; ``overload_minutes_share`` is the share of minutes in which at
least one server carries more than its capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from appshot_model.core.cube import grid_of
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.plots import plt, png_bytes
from appshot_model.sessions.demand import minute_demand
from appshot_model.sessions.expansion import (MINUTES_PER_HOUR, HourSpec, iter_session_blocks, load_deciles,
                                              volumes_in_bytes)
from appshot_model.sessions.models import DURATION_CAP_S, SessionModel

SERVER_CAPACITY_MBPS = 100.0
IDLE_POWER_W = 60.0
FULL_POWER_W = 200.0
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR
DEMANDS = ("sessions", "smooth", "smooth_placement")


def first_fit_decreasing(loads: np.ndarray, capacity: float = SERVER_CAPACITY_MBPS) -> np.ndarray:
    """Server index of each item (-1 for zero loads) by first-fit decreasing; an item larger than
    ``capacity`` opens a server of its own."""
    loads = np.asarray(loads, dtype=float)
    assignment = np.full(loads.size, -1, dtype=np.int64)
    room: list[float] = []
    for item in np.argsort(-loads, kind="stable"):
        load = loads[item]
        if load <= 0:
            break
        for server, free in enumerate(room):
            if load <= free:
                room[server] = free - load
                assignment[item] = server
                break
        else:
            room.append(capacity - load)
            assignment[item] = len(room) - 1
    return assignment


def server_power(server_loads: np.ndarray, capacity: float = SERVER_CAPACITY_MBPS) -> np.ndarray:
    """Power (W) of switched-on servers with these loads (Mbps): 60 W idle to 200 W at full load, linear;
    overloaded servers draw the full-load power."""
    utilisation = np.minimum(np.asarray(server_loads, dtype=float) / capacity, 1.0)
    return IDLE_POWER_W + (FULL_POWER_W - IDLE_POWER_W) * utilisation


def minute_energy(throughput: np.ndarray, assignment: np.ndarray | None = None,
                  capacity: float = SERVER_CAPACITY_MBPS) -> tuple[float, bool, int]:
    """Energy (Wh) of one minute for cell throughputs ``throughput`` (Mbps), whether a server is
    overloaded, and the servers on. ``assignment`` (server per cell, -1 = none) defaults to
    first-fit decreasing on this minute's throughput; cells with load but no server under a
    given assignment get servers of their own."""
    if assignment is None:
        assignment = first_fit_decreasing(throughput, capacity)
    else:
        assignment = assignment.copy()
        orphans = (assignment < 0) & (throughput > 0)
        assignment[orphans] = assignment.max(initial=-1) + 1 + np.arange(int(orphans.sum()))
    used = assignment >= 0
    if not used.any():
        return 0.0, False, 0
    loads = np.bincount(assignment[used], throughput[used])
    on = loads > 0
    power = server_power(loads[on], capacity)
    return float(power.sum() / 60.0), bool((loads > capacity * (1 + 1e-9)).any()), int(on.sum())


def vran_energy(throughput: np.ndarray, placement: np.ndarray | None = None,
                minutes_per_placement: int = MINUTES_PER_HOUR) -> dict:
    """Energy (kWh) and overload share for per-minute cell throughput ``[cells, minutes]`` (Mbps),
    packed each minute, or, given ``placement [cells, minutes // minutes_per_placement]``, with the
    servers fixed over each placement period."""
    cells, minutes = throughput.shape
    energy = 0.0
    overloaded = np.zeros(minutes, dtype=bool)
    servers = np.zeros(minutes, dtype=np.int64)
    for m in range(minutes):
        fixed = None if placement is None else placement[:, m // minutes_per_placement]
        wh, overloaded[m], servers[m] = minute_energy(throughput[:, m], fixed)
        energy += wh
    return {"energy_kwh": energy / 1000.0, "overload_minutes_share": float(overloaded.mean()),
            "servers": servers.tolist()}


def hourly_placement(smooth: np.ndarray) -> np.ndarray:
    """First-fit decreasing placement ``[cells, hours]`` of each hour's smooth throughput ``[cells, minutes]``."""
    hours = smooth.shape[1] // MINUTES_PER_HOUR
    return np.stack([first_fit_decreasing(smooth[:, h * MINUTES_PER_HOUR]) for h in range(hours)], axis=1)


def day_throughput(model: SessionModel, day: xr.DataArray, city: str, timezone: str, seed: int,
                   cap_s: float = DURATION_CAP_S, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Session-level and smooth per-minute throughput ``[cells, 1440]`` (Mbps) of a day cube
    ``[time = 24 consecutive hours, service, y, x]`` (bit/s, naive local times). Every hour is
    expanded into sessions (arrivals peak or off peak by its local hour); sessions running past
    midnight wrap to the day's start."""
    if day.sizes.get("time") != 24:
        raise AppshotInputError(f"a day cube needs 24 hourly time steps, got {day.sizes.get('time')}")
    times = pd.DatetimeIndex(day.time.values)
    if not (times[1:] - times[:-1] == pd.Timedelta(hours=1)).all():
        raise AppshotInputError(f"the day cube's time steps are not consecutive hours: {times[0]} .. {times[-1]}")
    grid = grid_of(day)
    n_cells = grid.height * grid.width
    session_bytes = np.zeros((n_cells, MINUTES_PER_DAY))
    smooth_bytes = np.zeros((n_cells, MINUTES_PER_DAY))
    for h, time in enumerate(times):
        spec = HourSpec(city, f"{time.hour:02d}", time, timezone)
        volumes = volumes_in_bytes(day.isel(time=h).transpose("service", "y", "x").values,
                                   day.attrs.get("units", "bit/s"))
        hour = slice(h * MINUTES_PER_HOUR, (h + 1) * MINUTES_PER_HOUR)
        smooth_bytes[:, hour] = volumes.sum(axis=0)[:, None] / MINUTES_PER_HOUR
        for block in iter_session_blocks(model, volumes, load_deciles(volumes.sum(axis=0)), spec.peak, seed,
                                         (city, "day", str(time)), cap_s):
            cells = np.unique(block.reconciliation["cell_id"])
            first = int(cells[0])
            session_bytes[first:first + cells.size] += minute_demand(
                block.cell_id.astype(np.int64) - first, h * 3600.0 + block.start_s, block.duration_s, block.bytes,
                cells.size, MINUTES_PER_DAY)
        if progress is not None:
            progress(1)
    to_mbps = 8.0 / 60.0 / 1e6
    return session_bytes * to_mbps, smooth_bytes * to_mbps


def vran_comparison(sessions: np.ndarray, smooth: np.ndarray) -> list[dict]:
    """Rows ``demand, energy_kwh, overload_minutes_share`` (and servers per minute) for the three demands."""
    results = {"sessions": vran_energy(sessions), "smooth": vran_energy(smooth),
               "smooth_placement": vran_energy(sessions, placement=hourly_placement(smooth))}
    return [{"demand": name, **results[name]} for name in DEMANDS]


def vran_png(rows: Sequence[dict], sessions: np.ndarray, smooth: np.ndarray, title: str = "") -> bytes:
    """Servers on per minute and city throughput over the day, for each demand."""
    minutes = np.arange(sessions.shape[1]) / 60.0
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    axes[0].plot(minutes, sessions.sum(axis=0), linewidth=0.6, label="sessions (per minute)")
    axes[0].plot(minutes, smooth.sum(axis=0), linewidth=1.2, label="smooth (hourly)")
    axes[0].set_ylabel("city throughput (Mbps)")
    axes[0].legend(fontsize=8)
    for row in rows:
        axes[1].step(minutes, row["servers"], where="post", linewidth=0.8,
                     label=f"{row['demand']}: {row['energy_kwh']:.2f} kWh, overload "
                           f"{100 * row['overload_minutes_share']:.1f} % of minutes")
    axes[1].set_ylabel("servers on")
    axes[1].set_xlabel("hour of day (local)")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{title} vRAN servers (100 Mbps, 60-200 W), first-fit decreasing each minute", fontsize=10)
    return png_bytes(fig)
