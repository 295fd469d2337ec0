"""Worlds the leave-one-city-out evaluation runs on: cities with a context cube and, per peak hour,
their weekday peak snapshots.

A world is anything with the :class:`World` interface. :class:`ArrayWorld` holds the arrays in memory
(picklable, so it can be handed to worker processes once); :func:`demo_world` simulates the demo world
(:mod:`appshot_model.traffic.demo`) into one; :func:`spectragan_world` reads the SpectraGAN cities with
traffic (real context, one service: total traffic) into one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import PEAK_HOURS


@runtime_checkable
class World(Protocol):
    """Cities to hold out in turn: ``context(city)`` is ``[attribute, y, x]``, ``snapshots(city, hour)`` the
    weekday peak-hour traffic ``[time, service, y, x]`` (traffic units) of every city in ``cities``."""

    name: str
    cities: tuple[str, ...]
    hours: tuple[str, ...]

    def context(self, city: str) -> xr.DataArray: ...

    def snapshots(self, city: str, hour: str) -> xr.DataArray: ...


@dataclass(frozen=True)
class ArrayWorld:
    """A :class:`World` held in memory. ``peaks`` maps ``(city, hour)`` to snapshots; ``description``
    says where the arrays come from (kept in the evaluation's run record); ``unseen`` holds the context cubes
    of cities without traffic (generated, not scored: :mod:`appshot_model.evaluation.unseen`)."""

    name: str
    contexts: Mapping[str, xr.DataArray]
    peaks: Mapping[tuple[str, str], xr.DataArray]
    description: dict = field(default_factory=dict)
    unseen: Mapping[str, xr.DataArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise AppshotInputError(f"world name {self.name!r} must be letters, digits or '_' (it names files)")
        cities = sorted({city for city, _ in self.peaks})
        if len(cities) < 2:
            raise AppshotInputError(f"world {self.name}: a leave-one-city-out evaluation needs >= 2 cities with "
                                    f"traffic, got {cities}")
        missing = [c for c in cities if c not in self.contexts]
        if missing:
            raise AppshotInputError(f"world {self.name}: cities {missing} have traffic but no context cube")
        hours = sorted({hour for _, hour in self.peaks})
        holes = [f"{c}|{h}" for c in cities for h in hours if (c, h) not in self.peaks]
        if holes:
            raise AppshotInputError(f"world {self.name}: no peak snapshots for {holes}; every city needs every hour")
        services = {tuple(str(s) for s in snap.service.values) for snap in self.peaks.values()}
        attributes = {tuple(str(a) for a in self.contexts[c].attribute.values) for c in cities}
        if len(services) != 1 or len(attributes) != 1:
            raise AppshotInputError(f"world {self.name}: cities differ in services ({len(services)} lists) or "
                                    f"context attributes ({len(attributes)} lists); they must share both")

    @property
    def cities(self) -> tuple[str, ...]:
        return tuple(sorted({city for city, _ in self.peaks}))

    @property
    def hours(self) -> tuple[str, ...]:
        known = list(PEAK_HOURS)
        present = {hour for _, hour in self.peaks}
        return tuple(sorted(present, key=lambda h: (known.index(h) if h in known else len(known), h)))

    def context(self, city: str) -> xr.DataArray:
        if city not in self.contexts:
            raise AppshotInputError(f"world {self.name} has no city {city!r}; cities: {list(self.cities)}")
        return self.contexts[city]

    def unseen_context(self, city: str) -> xr.DataArray:
        """Context cube of a city without traffic."""
        if city not in self.unseen:
            raise AppshotInputError(f"world {self.name} has no context-only city {city!r}; it has "
                                    f"{sorted(self.unseen) or 'none'}")
        return self.unseen[city]

    def snapshots(self, city: str, hour: str) -> xr.DataArray:
        if (city, hour) not in self.peaks:
            raise AppshotInputError(f"world {self.name} has no snapshots for city {city!r} at hour {hour!r}; "
                                    f"cities {list(self.cities)}, hours {list(self.hours)}")
        return self.peaks[(city, hour)]


def demo_world(cities: Sequence | None = None, seed: int = 0, days: int = 28,
               hours: Sequence[str] = tuple(PEAK_HOURS)) -> ArrayWorld:
    """The simulated demo world (``cities``: :class:`~appshot_model.traffic.demo.DemoCity` list, default
    the six demo cities) with the same arrays the Dagster assets ``context_cube`` and ``peak_traffic`` hold
    for this ``seed`` and ``days``."""
    from appshot_model.traffic.demo import DEMO_CITIES, simulate_context, simulate_traffic
    from appshot_model.traffic.peaks import peak_snapshots

    cities = list(DEMO_CITIES if cities is None else cities)
    contexts, peaks = {}, {}
    for city in cities:
        contexts[city.name] = simulate_context(city, seed=seed)
        traffic = simulate_traffic(city, contexts[city.name], seed=seed, days=days)
        for hour in hours:
            peaks[(city.name, hour)] = peak_snapshots(traffic, hour)
    return ArrayWorld("demo", contexts, peaks, demo_description(contexts, seed, days))


def demo_description(contexts: Mapping[str, xr.DataArray], seed: int, days: int) -> dict:
    """The run record's description of a demo world simulated with ``seed`` over ``days`` (city grid shapes)."""
    return {"kind": "simulated demo world", "seed": int(seed), "days": int(days),
            "cities": {name: [int(c.sizes["y"]), int(c.sizes["x"])] for name, c in sorted(contexts.items())}}


def spectragan_world(root: str | os.PathLike, hours: Sequence[str] = tuple(PEAK_HOURS)) -> ArrayWorld:
    """The SpectraGAN cities with traffic (Aachen, Bonn): their 27-attribute context cropped to the traffic
    window and the weekday peak-hour snapshots of their 3 weeks of hourly total traffic
    (:mod:`appshot_model.traffic.spectragan`); Dresden's whole context grid as the context-only city."""
    from appshot_model.traffic.peaks import peak_snapshots
    from appshot_model.traffic.spectragan import CONTEXT_ONLY_CITIES, TRAFFIC_CITIES, context_cube, read_traffic

    contexts, peaks = {}, {}
    for city in TRAFFIC_CITIES:
        contexts[city] = context_cube(root, city)
        traffic = read_traffic(root, city)
        for hour in hours:
            peaks[(city, hour)] = peak_snapshots(traffic, hour)
    description = {"kind": "SpectraGAN release: real context, SpectraGAN's hourly total traffic",
                   "root": str(root), "cities": {c: [int(x.sizes["y"]), int(x.sizes["x"])] for c, x in contexts.items()}}
    unseen = {city: context_cube(root, city, crop=False) for city in CONTEXT_ONLY_CITIES}
    return ArrayWorld("spectragan", contexts, peaks, description, unseen)
