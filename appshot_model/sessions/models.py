"""Seed-004 session models per appshot service: arrivals by load decile, volume mixtures, duration power laws.

- Arrivals (seed 004 §5.1): sessions arriving per minute at a base station of load decile ``d``:
  Gaussian at peak hours, Pareto off peak (scipy.stats ``norm`` / ``pareto`` with the released
  ``loc``, ``scale``, ``alpha``). A draw is a per-minute count, so it is clipped at 0 and rounded
  stochastically (floor plus one with the fractional part as probability: the mean is kept).
  Each arrival belongs to an app with probability = the app's share of all sessions
  (``sessions_share.csv``, seed 004 §5.1); arrivals of apps that no appshot service maps to are
  not generated (they carry traffic the cube does not hold).
- Volume (seed 004 §5.2, eq. 5): log10(bytes) follows the app's Gaussian mixture, main component
  weight 1 and residual peaks ``w_k``, all divided by ``1 + sum(w_k)``.
- Duration (seed 004 §5.3): volume = a * duration**b inverted, duration = (volume / a)**(1 / b),
  clipped to [:data:`DURATION_FLOOR_S`, cap]. The default cap is :data:`DURATION_CAP_S` = 1 h, as
  the authors suggest: right-tail volumes (and, for a negative exponent such as WhatsApp's, small
  volumes) invert to absurd durations.

The appshot services map to seed-004 apps through
:data:`appshot_model.traffic.demo.parameters.SERVICE_APPS` (one mapping for the whole project).
A service whose apps do not carry its own name (the release has no row for it) uses the mapped
apps as a stand-in and a :class:`StandInWarning` says so.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import stats

from appshot_model.core.errors import AppshotInputError
from appshot_model.sessions.coefficients import (DURATION_FILE, MIXTURE_FILE, SHARES_FILE, MixtureRow,
                                                 SessionCoefficients)
from appshot_model.traffic.demo.parameters import SERVICE_APPS

#: Longest session (s): the authors' suggested cap on inverted durations (seed 004 release notes).
DURATION_CAP_S = 3600.0
#: Shortest session (s), an assumption: one second, the resolution of the start times we write.
DURATION_FLOOR_S = 1.0


class StandInWarning(UserWarning):
    """A service has no row of its own in the seed-004 tables and borrows another app's models."""


@dataclass(frozen=True)
class VolumeMixture:
    """Gaussian mixture over log10(bytes per session): component ``means``, ``stds`` and
    normalised ``weights`` (seed 004 eq. 5: main weight 1, residual ``w_k``, over ``1 + sum w_k``)."""

    means: np.ndarray
    stds: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_row(cls, row: MixtureRow) -> "VolumeMixture":
        means = np.array([row.main_mean] + [r[0] for r in row.residuals])
        stds = np.array([row.main_std] + [r[1] for r in row.residuals])
        raw = np.array([1.0] + [r[2] for r in row.residuals])
        return cls(means, stds, raw / raw.sum())

    def cdf(self, log10_bytes: np.ndarray | float) -> np.ndarray:
        """P(log10 bytes <= x)."""
        x = np.asarray(log10_bytes, dtype=float)[..., None]
        return (self.weights * stats.norm.cdf(x, self.means, self.stds)).sum(axis=-1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of log10(bytes per session)."""
        component = rng.choice(len(self.weights), size=n, p=self.weights)
        return self.means[component] + self.stds[component] * rng.standard_normal(n)

    def mean_bytes(self) -> float:
        """Mean bytes per session: E[10**X] for X ~ N(m, s) is 10**m * exp((s ln 10)**2 / 2)."""
        return float((self.weights * 10.0 ** self.means * np.exp(0.5 * (self.stds * np.log(10.0)) ** 2)).sum())


def duration_from_volume(volume_bytes: np.ndarray, a: np.ndarray | float, b: np.ndarray | float,
                         cap_s: float = DURATION_CAP_S, floor_s: float = DURATION_FLOOR_S) -> np.ndarray:
    """Session duration (s) from its volume (bytes) by inverting volume = a * duration**b, clipped to
    [``floor_s``, ``cap_s``]."""
    if not 0 < floor_s <= cap_s:
        raise AppshotInputError(f"duration bounds must satisfy 0 < floor ({floor_s}) <= cap ({cap_s}) seconds")
    log_d = (np.log10(np.asarray(volume_bytes, dtype=float)) - np.log10(a)) / np.asarray(b, dtype=float)
    return np.clip(10.0 ** np.clip(log_d, -30, 30), floor_s, cap_s)


@dataclass(frozen=True)
class ArrivalModel:
    """Per-minute session arrivals at a base station for each load decile (index 0 = decile 0.1)."""

    peak_loc: np.ndarray
    peak_scale: np.ndarray
    nonpeak_alpha: np.ndarray
    nonpeak_loc: np.ndarray
    nonpeak_scale: np.ndarray

    @classmethod
    def from_coefficients(cls, coefficients: SessionCoefficients) -> "ArrivalModel":
        rows = coefficients.arrivals
        return cls(*(np.array([getattr(r, name) for r in rows]) for name in
                     ("peak_loc", "peak_scale", "nonpeak_alpha", "nonpeak_loc", "nonpeak_scale")))

    def distribution(self, decile_index: np.ndarray | int, peak: bool):
        """The frozen scipy distribution(s) of arrivals per minute (broadcast over ``decile_index``)."""
        i = np.asarray(decile_index)
        if peak:
            return stats.norm(loc=self.peak_loc[i], scale=self.peak_scale[i])
        return stats.pareto(self.nonpeak_alpha[i], loc=self.nonpeak_loc[i], scale=self.nonpeak_scale[i])

    def mean_per_minute(self, decile_index: np.ndarray | int, peak: bool) -> np.ndarray:
        """Expected arrivals per minute."""
        return np.asarray(self.distribution(decile_index, peak).mean())

    def draw_counts(self, rng: np.random.Generator, decile_index: np.ndarray, minutes: int, peak: bool) -> np.ndarray:
        """Integer arrivals ``[cells, minutes]``: draws clipped at 0, then rounded stochastically."""
        i = np.asarray(decile_index)[:, None]
        dist = self.distribution(i, peak)
        rates = np.maximum(dist.rvs(size=(i.shape[0], minutes), random_state=rng), 0.0)
        whole = np.floor(rates)
        return (whole + (rng.random(rates.shape) < rates - whole)).astype(np.int64)


@dataclass(frozen=True)
class SessionModel:
    """Everything needed to draw sessions for the services of a traffic cube.

    ``apps`` lists every seed-004 app used, ``app_service[i]`` the index (into ``services``) of
    the service app ``i`` belongs to, ``app_probability[i]`` the app's share of ALL sessions at a
    base station (fraction). Mixture components are stacked ``[app, component]`` (padded) for
    vectorised sampling; ``log10_a`` and ``b`` are the duration power laws.
    """

    services: tuple[str, ...]
    apps: tuple[str, ...]
    app_service: np.ndarray
    app_probability: np.ndarray
    app_traffic_percent: np.ndarray
    mixtures: tuple[VolumeMixture, ...]
    log10_a: np.ndarray
    b: np.ndarray
    arrivals: ArrivalModel
    stand_ins: dict[str, tuple[str, ...]]
    source: str

    @cached_property
    def _stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = max(len(m.weights) for m in self.mixtures)
        means = np.zeros((len(self.apps), width))
        stds = np.ones((len(self.apps), width))
        cumulative = np.ones((len(self.apps), width))
        for i, m in enumerate(self.mixtures):
            k = len(m.weights)
            means[i, :k], stds[i, :k] = m.means, m.stds
            cumulative[i, :k] = np.cumsum(m.weights)
            cumulative[i, k - 1:] = 1.0
        return means, stds, cumulative

    def sample_log10_bytes(self, rng: np.random.Generator, app_index: np.ndarray) -> np.ndarray:
        """One log10(bytes) draw per session from its app's mixture."""
        means, stds, cumulative = self._stacked
        u = rng.random(app_index.shape[0])
        component = (u[:, None] >= cumulative[app_index]).sum(axis=1)
        return means[app_index, component] + stds[app_index, component] * rng.standard_normal(app_index.shape[0])

    def durations(self, log10_bytes: np.ndarray, app_index: np.ndarray, cap_s: float = DURATION_CAP_S) -> np.ndarray:
        """Durations (s) from the drawn volumes by each app's inverted power law."""
        return duration_from_volume(10.0 ** log10_bytes, 10.0 ** self.log10_a[app_index], self.b[app_index], cap_s)

    def service_session_share(self) -> np.ndarray:
        """Expected fraction of the generated sessions per service (seed-004 session shares of the mapped
        apps, renormalised over the services)."""
        per_service = np.bincount(self.app_service, self.app_probability, len(self.services))
        return per_service / per_service.sum()

    def service_traffic_share(self) -> np.ndarray:
        """Seed-004 traffic shares of the mapped apps per service, renormalised over the services."""
        per_service = np.bincount(self.app_service, self.app_traffic_percent, len(self.services))
        return per_service / per_service.sum()

    def service_mean_bytes(self) -> np.ndarray:
        """Mean bytes per session of each service under the mixtures (apps weighted by session share)."""
        means = np.array([m.mean_bytes() for m in self.mixtures])
        weight = np.bincount(self.app_service, self.app_probability, len(self.services))
        return np.bincount(self.app_service, self.app_probability * means, len(self.services)) / weight

    def service_log10_cdf(self, service: str, log10_bytes: np.ndarray) -> np.ndarray:
        """CDF of log10(bytes) of a service's sessions: its apps' mixtures weighted by session share."""
        index = self.services.index(service)
        apps = np.flatnonzero(self.app_service == index)
        weights = self.app_probability[apps] / self.app_probability[apps].sum()
        return sum(w * self.mixtures[a].cdf(log10_bytes) for a, w in zip(apps, weights, strict=True))


def _plain(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def session_model(coefficients: SessionCoefficients, services: Sequence[str],
                  mapping: Mapping[str, Sequence[str]] = SERVICE_APPS) -> SessionModel:
    """The session model of ``services`` (a cube's service names, in its order).

    Unknown services and mapped apps missing from a coefficient table are errors. A service whose
    mapped apps do not carry its own name gets those apps as a stand-in, with a :class:`StandInWarning`.
    """
    services = tuple(str(s) for s in services)
    unknown = [s for s in services if s not in mapping]
    if unknown:
        raise AppshotInputError(f"unknown service(s) {unknown} for session expansion; services with seed-004 "
                                f"models: {sorted(mapping)}")
    if len(set(services)) != len(services):
        raise AppshotInputError(f"duplicated services in {list(services)}")
    apps: list[str] = []
    app_service: list[int] = []
    stand_ins: dict[str, tuple[str, ...]] = {}
    tables = ((SHARES_FILE, coefficients.session_percent), (MIXTURE_FILE, coefficients.mixtures),
              (DURATION_FILE, coefficients.power_laws))
    for index, service in enumerate(services):
        mapped = tuple(mapping[service])
        if not mapped:
            raise AppshotInputError(f"service {service!r} maps to no seed-004 app")
        for app in mapped:
            for name, table in tables:
                if app not in table:
                    raise AppshotInputError(f"{coefficients.folder}/{name}: no row for app {app!r}, which service "
                                            f"{service!r} maps to")
            if app in apps:
                other = services[app_service[apps.index(app)]]
                raise AppshotInputError(f"app {app!r} is mapped to two services ({other!r} and {service!r}); "
                                        f"each app may serve one")
            apps.append(app)
            app_service.append(index)
        if not all(_plain(app).startswith(_plain(service)) for app in mapped):
            stand_ins[service] = mapped
            own = [app for app in coefficients.session_percent if _plain(app).startswith(_plain(service))]
            note = (f"; note: the tables do have row(s) {own} that the mapping does not use" if own else "")
            warnings.warn(StandInWarning(
                f"service {service!r} has no row of its own in the seed-004 tables: its sessions use the "
                f"stand-in app(s) {list(mapped)} (appshot_model.traffic.demo.parameters.SERVICE_APPS){note}"),
                stacklevel=2)
    power = [coefficients.power_laws[a] for a in apps]
    return SessionModel(
        services=services, apps=tuple(apps), app_service=np.array(app_service, dtype=np.int64),
        app_probability=np.array([coefficients.session_percent[a] / 100.0 for a in apps]),
        app_traffic_percent=np.array([coefficients.traffic_percent[a] for a in apps]),
        mixtures=tuple(VolumeMixture.from_row(coefficients.mixtures[a]) for a in apps),
        log10_a=np.log10([p[0] for p in power]), b=np.array([p[1] for p in power]),
        arrivals=ArrivalModel.from_coefficients(coefficients), stand_ins=stand_ins, source=coefficients.folder)
