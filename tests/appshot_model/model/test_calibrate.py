import numpy as np
import pytest
import torch

from appshot_model.model.calibrate import calibrate_noise, variation
from appshot_model.model.config import ModelConfig
from appshot_model.model.networks import Generator


def test_variation_of_a_constructed_series():
    # two cells; the window total is 10 or 12 (spread 0.1286 with ddof 1); once each snapshot is rescaled to
    # the mean total (11), cell 0 is 5.5 both times (CV 0) and cell 1 is 5.5 both times too
    totals = np.array([[[5.0, 5.0]], [[6.0, 6.0]]])
    spread, cell_cv = variation(totals)
    assert spread == pytest.approx(np.std([10, 12], ddof=1) / 11) and cell_cv == pytest.approx(0.0)
    # cells that trade places while the total stays: spread 0, each cell's CV = std([2, 4], ddof=1) / 3
    spread, cell_cv = variation(np.array([[[2.0, 4.0]], [[4.0, 2.0]]]))
    assert spread == pytest.approx(0.0) and cell_cv == pytest.approx(np.std([2, 4], ddof=1) / 3)


def test_calibration_matches_real_spread_and_levels():
    """A generator whose z moves every cell far too much: after calibration its city totals vary like the
    real days on the training windows and each service keeps the real mean level."""
    torch.manual_seed(0)
    cfg = ModelConfig(features=4, noise_channels=2)
    gen = Generator(3, 2, cfg).eval()
    for conv in (gen.film_sigma, gen.film_mu):
        torch.nn.init.normal_(conv.weight, std=3.0)
    rng = np.random.default_rng(0)
    contexts = [rng.random((3, 20, 24)).astype(np.float32), rng.random((3, 16, 16)).astype(np.float32)]
    traffic = [(0.3 * (1 + 0.05 * rng.standard_normal((12, 1, 1, 1))) * (0.8 + 0.4 * rng.random((12, 2, *c.shape[1:]))))
               .astype(np.float32) for c in contexts]
    weights = np.array([1.0, 2.0])
    calibration = calibrate_noise(gen, contexts, traffic, weights, cfg, seed=3)
    assert calibration.uncalibrated_spread > 2 * calibration.real_spread
    assert calibration.generated_spread == pytest.approx(calibration.real_spread, rel=0.15)
    assert 0 < calibration.z_scale < 1
    with torch.no_grad():
        padded = [torch.from_numpy(np.pad(c, [(0, 0), (1, 1), (1, 1)], mode="edge"))[None] for c in contexts]
        levels = np.mean([gen(p.expand(64, -1, -1, -1), torch.randn(64, cfg.nz), torch.randn(64, 2, *c.shape[1:]))
                          .mean(dim=(0, 2, 3)).numpy() for p, c in zip(padded, contexts, strict=True)], axis=0)
    real_levels = np.mean([t.mean(axis=(0, 2, 3)) for t in traffic], axis=0)
    np.testing.assert_allclose(levels, real_levels, rtol=0.05)


def test_many_entries_are_calibrated_on_a_seeded_subset(monkeypatch):
    """Beyond MAX_ENTRIES entries (an hour-conditioned model has one per city, hour and day type) the calibration
    runs on a seeded subset: the same result as calibrating on that subset alone, whatever the other entries."""
    import appshot_model.model.calibrate as calibrate

    cfg = ModelConfig(features=4, noise_channels=2)
    rng = np.random.default_rng(1)
    contexts = [rng.random((3, 12, 12)).astype(np.float32) for _ in range(5)]
    traffic = [(0.3 * (0.8 + 0.4 * rng.random((6, 2, 12, 12)))).astype(np.float32) for _ in contexts]

    def run(ctx, tr) -> tuple[float, list[float]]:
        torch.manual_seed(0)
        gen = Generator(3, 2, cfg).eval()
        result = calibrate_noise(gen, ctx, tr, np.array([1.0, 2.0]), cfg, seed=3)
        return result.z_scale, result.level_shift

    monkeypatch.setattr(calibrate, "MAX_ENTRIES", 2)
    pick = np.sort(np.random.default_rng(calibrate.derive_seed(3, "noise calibration", "entries")).choice(5, 2, replace=False))
    subset = run([contexts[i] for i in pick], [traffic[i] for i in pick])
    assert run(contexts, traffic) == subset
    changed = [t if i in pick else t * 2 for i, t in enumerate(traffic)]
    assert run(contexts, changed) == subset
