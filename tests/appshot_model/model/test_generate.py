import numpy as np
import pytest
import torch

from appshot_model.core.cube import make_context_cube, read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.generate import generate_fast, generate_map, generate_naive, generate_snapshots
from appshot_model.model.networks import Generator
from appshot_model.model.normalise import Normalisation
from appshot_model.model.patches import patch_origins

ATTRIBUTES = ["population", "landuse_sea", "poi_cafe"]
SERVICES = ["youtube", "netflix"]


def _randomise_bn(gen: Generator) -> None:
    """Non-trivial BN running statistics, so folding them into the 1x1 weights is exercised, and a FiLM that uses z."""
    for bn in [gen.bn1, *gen.hidden_bn]:
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    if gen.noise_mode == "film":  # a trained FiLM uses z (a fresh one starts as the identity)
        for conv in (gen.film_sigma, gen.film_mu):
            conv.weight.data.normal_(0.0, 0.05)


def make_artefact(noise: str = "film", overlap: bool = True, noise_scope: str = "snapshot",
                  noise_channels: int | None = None) -> ModelArtefact:
    torch.manual_seed(3)
    cfg = ModelConfig(features=4, noise=noise, overlap=overlap, noise_scope="patch" if not overlap else noise_scope,
                      noise_channels=noise_channels)
    gen = Generator(len(ATTRIBUTES), len(SERVICES), cfg)
    _randomise_bn(gen)
    gen.eval()
    norm = Normalisation(SERVICES, ATTRIBUTES, [1000.0, 50.0], [5.0, 1.0, 2.0], context_log1p=[True, False, True])
    return ModelArtefact(gen, cfg, TrainConfig(steps=1), ATTRIBUTES, SERVICES, norm, "morning", "bit/s", "0" * 64)


def make_context(height: int = 14, width: int = 17, attributes=ATTRIBUTES) -> "xr.DataArray":  # noqa: F821
    rng = np.random.default_rng(5)
    grid = Grid("EPSG:32632", 500_000.0, 5_605_000.0, height, width)
    return make_context_cube(rng.gamma(1.0, 20.0, (len(attributes), height, width)), attributes, grid)


@pytest.mark.parametrize("noise", ["film", "concat"])
@pytest.mark.parametrize("stride", [1, 10])
def test_fast_path_equals_patch_by_patch_generation(noise, stride):
    artefact = make_artefact(noise, noise_scope="patch")
    rng = np.random.default_rng(0)
    context = rng.random((3, 23, 31)).astype(np.float32)
    rows, cols = patch_origins(23, 10, stride), patch_origins(31, 10, stride)
    z = torch.randn(len(rows) * len(cols), artefact.model_cfg.nz, generator=torch.Generator().manual_seed(1))
    fast = generate_fast(artefact.generator, context, z, rows, cols, 10, 3)
    naive = generate_naive(artefact.generator, context, z, rows, cols, 10, 3)
    assert fast.shape == (2, 23, 31)
    np.testing.assert_allclose(fast, naive, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("noise", ["film", "concat"])
@pytest.mark.parametrize("tile", [64, 7])
def test_one_z_per_snapshot_equals_stitching_every_patch_with_that_z(noise, tile):
    artefact = make_artefact(noise, noise_channels=0)
    context = np.random.default_rng(0).random((3, 23, 31)).astype(np.float32)
    z = torch.randn(artefact.model_cfg.nz, generator=torch.Generator().manual_seed(1))
    rows, cols = patch_origins(23, 10, 1), patch_origins(31, 10, 1)
    stitched = generate_naive(artefact.generator, context, z[None].expand(len(rows) * len(cols), -1).contiguous(),
                              rows, cols, 10, 3)
    one_pass = generate_map(artefact.generator, context, z, 3, tile=tile)
    assert one_pass.shape == (2, 23, 31)
    np.testing.assert_allclose(one_pass, stitched, rtol=1e-5, atol=1e-6)


def test_noise_scopes_differ_in_sample_to_sample_spread():
    """Per-patch noise averages up to 100 draws per cell; one z per snapshot does not."""
    spreads = {}
    for scope in ("snapshot", "patch"):
        out = generate_snapshots(make_artefact(noise_scope=scope, noise_channels=0), make_context(30, 30), 8, 0).values
        spreads[scope] = float((out.std(axis=0) / out.mean(axis=0))[:, 10:20, 10:20].mean())
    assert spreads["snapshot"] > 2 * spreads["patch"] > 0


def test_snapshots_are_georeferenced_labelled_and_reproducible(tmp_path):
    artefact = make_artefact()
    context = make_context()
    # extra attribute and a different order must be handled by selecting the model's attributes
    shuffled = make_context(attributes=["poi_cafe", "poi_shop", "population", "landuse_sea"])
    a = generate_snapshots(artefact, context, n_samples=3, seed=11)
    b = generate_snapshots(artefact, context, n_samples=3, seed=11)
    c = generate_snapshots(artefact, context, n_samples=3, seed=12)
    assert a.dims == ("sample", "service", "y", "x") and a.shape == (3, 2, 14, 17) and a.dtype == np.float32
    assert a.values.tobytes() == b.values.tobytes()
    assert not np.array_equal(a.values, c.values)
    assert not np.array_equal(a.values[0], a.values[1])
    assert (a.values >= 0).all() and a.values[:, 0].max() <= 1000.0 and a.values[:, 1].max() <= 50.0
    assert a.attrs["label"] == "synthetic" and a.attrs["seed"] == 11 and a.attrs["units"] == "bit/s"
    assert a.attrs["model_hash"] == artefact.model_hash and a.attrs["peak_hour"] == "morning"
    assert a.attrs["attributes"] == ATTRIBUTES
    assert a.rio.crs == context.rio.crs and a.rio.transform() == context.rio.transform()
    np.testing.assert_array_equal(a.x.values, context.x.values)
    assert generate_snapshots(artefact, shuffled, 1, 11).shape == (1, 2, 14, 17)
    first = generate_snapshots(artefact, context, 1, 11)  # release verification regenerates only sample 0
    assert first.values[0].tobytes() == a.values[0].tobytes()
    back = read_cube(write_cube(a, tmp_path / "gen.nc"))
    np.testing.assert_array_equal(back.values, a.values)


def test_missing_attributes_are_listed():
    artefact = make_artefact()
    with pytest.raises(AppshotInputError, match=r"lacks attributes \['landuse_sea'\]"):
        generate_snapshots(artefact, make_context(attributes=["population", "poi_cafe"]), 1, 0)


def test_too_small_context_is_a_clear_error():
    with pytest.raises(AppshotInputError, match="9 x 17.*10 x 10 traffic"):
        generate_snapshots(make_artefact(), make_context(9, 17), 1, 0)


def test_no_overlap_ablation_generates_the_whole_map():
    out = generate_snapshots(make_artefact(overlap=False), make_context(23, 17), 2, 0)
    assert out.shape == (2, 2, 23, 17) and np.isfinite(out.values).all()
