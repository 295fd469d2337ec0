import math

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation import metrics
from appshot_model.evaluation.emd import nemd
from appshot_model.evaluation.metrics import (hemd, hotspot_count, hotspots, mean_pairwise_ssim, pairwise_ssim_error,
                                              psnr, score, share_errors, ssim, stochasticity_histograms, werr)
from tests.appshot_model.evaluation.maps import blobs

# ---- WErr and shares


def test_werr_of_a_map_scaled_by_1_1_is_0_1_and_zero_for_itself():
    real = np.random.default_rng(0).gamma(2.0, 1.0, (4, 8, 9))
    assert werr(real, 1.1 * real) == pytest.approx(0.1)
    assert werr(real, real) == 0.0
    sets = np.stack([real, 2 * real])  # mean per-snapshot volume is 1.5x real
    assert werr(real, sets) == pytest.approx(0.5)


def test_werr_weights_services_by_real_share():
    real = np.zeros((2, 2, 2))
    real[0] = 3.0
    real[1] = 1.0  # shares 0.75 / 0.25
    gen = real.copy()
    gen[1] *= 2.0  # +100 % on the small service only
    assert werr(real, gen) == pytest.approx(0.25 * 1.0)


def test_share_errors_are_relative_and_scale_free():
    real = np.random.default_rng(1).gamma(2.0, 1.0, (3, 5, 5))
    assert np.allclose(share_errors(real, 7 * real), 0.0)
    gen = real.copy()
    gen[0] *= 2
    shares = real.sum(axis=(1, 2)) / real.sum()
    expected_share0 = 2 * shares[0] / (1 + shares[0])
    assert share_errors(real, gen)[0] == pytest.approx(abs(expected_share0 - shares[0]) / shares[0])


def test_invalid_traffic_is_refused():
    with pytest.raises(ValueError, match="negative"):
        werr(-np.ones((1, 2, 2)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        nemd(np.full((3, 3), np.nan), np.ones((3, 3)))
    with pytest.raises(ValueError, match="zero total mass"):
        nemd(np.zeros((3, 3)), np.ones((3, 3)))


def test_ssim_and_psnr_agree_with_skimage_on_normalised_maps():
    rng = np.random.default_rng(5)
    real, gen = rng.gamma(2.0, 3.0, (3, 20, 30)), rng.gamma(2.0, 3.0, (3, 20, 30))
    top = real.max(axis=(1, 2))
    expect_ssim = np.mean([structural_similarity(real[s] / top[s], gen[s] / top[s], data_range=1.0)
                           for s in range(3)])
    expect_psnr = np.mean([peak_signal_noise_ratio(real[s] / top[s], gen[s] / top[s], data_range=1.0)
                           for s in range(3)])
    assert ssim(real, gen) == pytest.approx(expect_ssim)
    assert psnr(real, gen) == pytest.approx(expect_psnr)
    scale = np.array([50.0, 60.0, 70.0])
    assert psnr(real[0], gen[0], scale=50.0) == pytest.approx(
        peak_signal_noise_ratio(real[0] / 50, gen[0] / 50, data_range=1.0))
    assert ssim(real, gen, scale=scale) == pytest.approx(np.mean(
        [structural_similarity(real[s] / scale[s], gen[s] / scale[s], data_range=1.0) for s in range(3)]))
    assert ssim(real, real) == pytest.approx(1.0) and psnr(real, real) == math.inf
    assert -1 < ssim(real[:, :5, :5], gen[:, :5, :5]) < 1  # window shrinks to fit small maps


# ---- hotspots


def test_single_peak_is_one_hotspot_and_constant_map_has_none():
    yy, xx = np.mgrid[:21, :25]
    peak = np.exp(-((yy - 10) ** 2 + (xx - 12) ** 2) / 20.0)
    assert hotspot_count(peak) == 1 and hotspots(peak)[10, 12]
    assert hotspot_count(np.ones((6, 6))) == 0
    two = peak + np.exp(-((yy - 2) ** 2 + (xx - 2) ** 2) / 2.0)
    assert hotspot_count(two) == 2
    assert hotspot_count(two, threshold=0.99) == 2 and hotspot_count(two, threshold=1.5) == 0
    corner = np.zeros((4, 4))
    corner[0, 0] = 1.0
    assert hotspots(corner)[0, 0] and hotspot_count(corner) == 1  # neighbours outside the map ignored


def test_hemd_is_the_1d_emd_of_hotspot_counts():
    assert hemd([3, 4, 5], [3, 4, 5]) == 0.0
    assert hemd([3, 4, 5], [5, 6, 7]) == pytest.approx(2.0)
    assert hemd([1, 2], [1, 1, 4]) == pytest.approx(stats.wasserstein_distance([1, 2], [1, 1, 4]))


# ---- inter-service, stochasticity, score


def test_pairwise_ssim():
    base = blobs(40, 16, 16)
    same = np.stack([base, 3 * base, 0.5 * base])
    assert mean_pairwise_ssim(same) == pytest.approx(1.0)
    assert pairwise_ssim_error(same[None], same[None]) == 0.0
    mixed = np.stack([base, blobs(41, 16, 16), blobs(42, 16, 16)])
    assert mean_pairwise_ssim(mixed) < 0.9
    assert pairwise_ssim_error(same[None], mixed[None]) == pytest.approx(1.0 - mean_pairwise_ssim(mixed))


def test_stochasticity_histograms_share_edges():
    rng = np.random.default_rng(6)
    real, gen = rng.gamma(2.0, 1.0, (5, 2, 12, 12)), rng.gamma(2.0, 1.1, (7, 2, 12, 12))
    hist = stochasticity_histograms(real, gen, bins=10)
    assert set(hist) == {"city_total", "pixel_value", "hotspot_count"}
    for entry in hist.values():
        assert len(entry["real"]) == len(entry["generated"]) == len(entry["edges"]) - 1
        widths = np.diff(entry["edges"])
        assert (entry["real"] * widths).sum() == pytest.approx(1.0)


def test_score_of_a_set_with_itself_is_ideal_and_keys_are_stable():
    rng = np.random.default_rng(7)
    real = np.stack([np.stack([blobs(100 + 10 * t + s, 14, 15) for s in range(3)]) for t in range(4)])
    result = score(real, real)
    assert set(metrics.HEADLINE_METRICS) <= set(result)
    assert result["werr"] == 0.0 and result["nemd"] == 0.0 and result["hemd"] == 0.0
    assert result["ssim"] == pytest.approx(1.0) and result["psnr"] == math.inf and result["n_pairs"] == 4
    noisy = real * rng.lognormal(0, 0.3, real.shape)
    other = score(real, noisy[:3], pairing="all", nemd_max_pairs=2)
    assert other["n_pairs"] == 12 and other["n_nemd_pairs"] == 2
    assert 0 < other["nemd"] < 1 and 0 < other["ssim"] < 1 and np.isfinite(other["psnr"])
    coarse = score(real, noisy[:3], pairing="mean", nemd_method="coarse", nemd_block=2)
    assert coarse["n_pairs"] == 1 and np.isfinite(coarse["nemd"])
    with pytest.raises(ValueError, match="pairing"):
        score(real, real, pairing="zip")


def test_score_reuses_cached_uniform_emds(monkeypatch):
    real = np.stack([np.stack([blobs(200 + 10 * t + s, 12, 12) for s in range(2)]) for t in range(2)])
    gen = real[::-1].copy()
    calls = []
    original = metrics.emd_to_uniform
    monkeypatch.setattr(metrics, "emd_to_uniform", lambda m, **kw: calls.append(1) or original(m, **kw))
    cache = {}
    first = score(real, gen, emd_cache=cache)
    assert len(calls) == 4 and len(cache) == 4
    assert score(real, gen * 2, emd_cache=cache)["nemd"] == pytest.approx(first["nemd"]) and len(calls) == 4


def test_score_counts_service_maps_without_a_distribution():
    real = np.stack([np.stack([blobs(300 + 10 * t + s, 12, 12) for s in range(2)]) for t in range(2)])
    gen = real.copy()
    gen[:, 1] = 0.0
    result = score(real, gen)
    assert result["n_nemd_undefined"] == 2 and result["nemd"] == pytest.approx(0.0, abs=1e-12)
    assert result["werr"] > 0


def _empty_land_cube(height: int = 30, width: int = 30):
    from appshot_model.core.cube import make_context_cube
    from appshot_model.core.grid import Grid
    from appshot_model.core.names import ATTRIBUTES

    values = np.zeros((len(ATTRIBUTES), height, width), np.float32)
    values[ATTRIBUTES.index("population"), :5, :5] = 100.0           # a village in the north-west corner
    values[ATTRIBUTES.index("landuse_barren_lands")] = 0.5           # rock everywhere
    values[ATTRIBUTES.index("landuse_barren_lands"), :, -1] = 0.2    # ... but too little land use on the east edge
    values[ATTRIBUTES.index("poi_secondary_roads"), -1, :] = 120.0   # a road along the south edge
    return make_context_cube(values, ATTRIBUTES, Grid("EPSG:32632", 500_000.0, 5_605_000.0, height, width))


def test_remote_empty_cells_are_far_covered_and_without_pois():
    from appshot_model.evaluation.metrics import remote_empty_cells, remote_empty_share

    cube = _empty_land_cube()
    remote, inhabited = remote_empty_cells(cube)
    assert inhabited.sum() == 25
    # 2 km = 8 cells of 250 m from the village's nearest cell (4, 4): centre distance > 2000 m
    assert not remote[12, 4] and remote[13, 4] and not remote[4, 12] and remote[4, 13]
    assert not remote[:, -1].any() and not remote[-1, :].any()
    expected = sum(1 for y in range(29) for x in range(29)
                   if 250 * np.hypot(max(0, y - 4), max(0, x - 4)) > 2000)
    assert remote.sum() == expected
    traffic = np.where(inhabited, 10.0, 0.0) + np.where(remote, 0.3, 0.0)
    share, cells = remote_empty_share(cube, traffic)
    assert cells == expected and share == pytest.approx(0.03)
    with pytest.raises(AppshotInputError, match="traffic map is"):
        remote_empty_share(cube, traffic[:10])
