"""Seed-004 session models: mixtures, duration inversion, arrivals, service mapping and stand-ins."""

import warnings

import numpy as np
import pytest
from scipy import stats

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import SERVICES
from appshot_model.sessions.coefficients import MixtureRow
from appshot_model.sessions.models import (DURATION_CAP_S, ArrivalModel, StandInWarning, VolumeMixture,
                                           duration_from_volume, session_model)


def test_one_component_mixture_reproduces_its_mean_and_std():
    mixture = VolumeMixture.from_row(MixtureRow(5.5, 0.4, ()))
    draws = mixture.sample(np.random.default_rng(0), 400_000)
    assert draws.mean() == pytest.approx(5.5, abs=0.003)
    assert draws.std() == pytest.approx(0.4, abs=0.003)
    # in bytes: E[10**X] = 10**m * exp((s ln 10)**2 / 2)
    assert mixture.mean_bytes() == pytest.approx(10 ** 5.5 * np.exp(0.5 * (0.4 * np.log(10)) ** 2))
    assert (10.0 ** draws).mean() == pytest.approx(mixture.mean_bytes(), rel=0.01)
    assert mixture.cdf(5.5) == pytest.approx(0.5)


def test_mixture_weights_are_normalised_by_one_plus_residual_weights():
    mixture = VolumeMixture.from_row(MixtureRow(5.0, 1.0, ((7.0, 0.1, 0.25), (3.0, 0.2, 0.25))))
    assert mixture.weights == pytest.approx([1 / 1.5, 0.25 / 1.5, 0.25 / 1.5])
    draws = mixture.sample(np.random.default_rng(1), 300_000)
    near_peak = (stats.norm.cdf(7.4, 5, 1) - stats.norm.cdf(6.6, 5, 1)) / 1.5 + 0.25 / 1.5  # main tail + peak
    assert np.mean(np.abs(draws - 7.0) < 0.4) == pytest.approx(near_peak, abs=0.004)
    assert stats.kstest(draws, mixture.cdf).statistic < 0.005


@pytest.mark.parametrize("volume, a, b, expected", [
    (1e6, 1000.0, 2.0, 10 ** 1.5),     # (1e6 / 1e3) ** (1 / 2) = 31.6 s
    (5e4, 100.0, 1.0, 500.0),          # linear: volume / a
    (1e3, 1e6, 0.5, 1.0),              # (1e-3) ** 2 = 1e-6 s -> floored at 1 s
    (1e12, 1000.0, 1.0, DURATION_CAP_S),  # 1e9 s -> capped at 1 h
    (1e5, 1e6, -0.5, 100.0),           # negative exponent: (0.1) ** -2 = 100 s
])
def test_duration_inverts_the_power_law_within_floor_and_cap(volume, a, b, expected):
    assert duration_from_volume(np.array([volume]), a, b)[0] == pytest.approx(expected)


def test_duration_cap_is_a_parameter():
    assert duration_from_volume(np.array([1e9]), 1.0, 1.0, cap_s=600.0)[0] == 600.0
    with pytest.raises(AppshotInputError, match="duration bounds"):
        duration_from_volume(np.array([1.0]), 1.0, 1.0, cap_s=0.5)


def test_arrivals_follow_scipy_conventions(tiny_coefficients):
    arrivals = ArrivalModel.from_coefficients(tiny_coefficients)
    peak = arrivals.distribution(4, peak=True)  # decile 0.5: Normal(10, 1)
    assert (peak.mean(), peak.std()) == pytest.approx((10.0, 1.0))
    off = arrivals.distribution(4, peak=False)  # Pareto(b=1.765, scale=2.5): mean b * scale / (b - 1)
    assert off.mean() == pytest.approx(1.765 * 2.5 / 0.765)
    counts = arrivals.draw_counts(np.random.default_rng(0), np.full(200, 4), 600, peak=True)
    assert counts.dtype.kind == "i" and counts.mean() == pytest.approx(10.0, abs=0.02)  # rounding keeps the mean
    night = arrivals.draw_counts(np.random.default_rng(0), np.full(200, 4), 600, peak=False)
    tail = stats.pareto(1.765, scale=2.5).sf  # P(count >= 26) lies between P(X >= 26) and P(X >= 25)
    assert night.min() >= 2 and tail(26) - 0.0008 < np.mean(night >= 26) < tail(25) + 0.0008


def test_service_model_of_the_tiny_release(tiny_coefficients, tiny_mapping):
    with pytest.warns(StandInWarning, match=r"service 'gamma' has no row of its own.*\['Beta'\]"):
        model = session_model(tiny_coefficients, ["alpha", "gamma"], tiny_mapping)
    assert model.stand_ins == {"gamma": ("Beta",)}
    assert model.service_session_share() == pytest.approx([2 / 3, 1 / 3])
    assert model.service_traffic_share() == pytest.approx([0.3, 0.7])
    assert model.app_probability == pytest.approx([0.6, 0.3])


def test_unknown_services_and_missing_apps_are_clear_errors(tiny_coefficients, tiny_mapping):
    with pytest.raises(AppshotInputError, match=r"unknown service\(s\) \['tiktok'\].*alpha"):
        session_model(tiny_coefficients, ["alpha", "tiktok"], tiny_mapping)
    with pytest.raises(AppshotInputError, match=r"sessions_share.csv: no row for app 'Delta'.*service 'alpha'"):
        session_model(tiny_coefficients, ["alpha"], {"alpha": ("Delta",)})
    with pytest.raises(AppshotInputError, match=r"app 'Alpha' is mapped to two services"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StandInWarning)
            session_model(tiny_coefficients, ["alpha", "gamma"], {"alpha": ("Alpha",), "gamma": ("Alpha",)})


def test_appshot_services_on_the_real_release_warn_for_each_stand_in(release):
    with pytest.warns(StandInWarning) as caught:
        model = session_model(release, SERVICES)
    assert set(model.stand_ins) == {s for s in SERVICES if any(s in str(w.message).split("'")[1:2] for w in caught)}
    assert {"apple_store", "itunes", "google_play"} <= set(model.stand_ins)
    assert "instagram" not in model.stand_ins and "facebook" not in model.stand_ins
    assert model.service_session_share().sum() == pytest.approx(1.0)
    assert model.app_probability.sum() < 1.0  # sessions of unmapped apps are not generated


def test_the_expansion_sampler_reproduces_one_component_mean_and_std(tiny_coefficients, tiny_mapping):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInWarning)
        model = session_model(tiny_coefficients, ["alpha", "gamma"], tiny_mapping)
    beta = model.apps.index("Beta")  # one component: N(6.0, 0.8) over log10 bytes
    draws = model.sample_log10_bytes(np.random.default_rng(2), np.full(400_000, beta))
    assert draws.mean() == pytest.approx(6.0, abs=0.005) and draws.std() == pytest.approx(0.8, abs=0.005)
    alpha = model.apps.index("Alpha")  # main N(5, 0.5) weight 1, residual N(6, 0.1) weight 0.25
    draws = model.sample_log10_bytes(np.random.default_rng(3), np.full(400_000, alpha))
    assert stats.kstest(draws, model.mixtures[alpha].cdf).statistic < 0.004
