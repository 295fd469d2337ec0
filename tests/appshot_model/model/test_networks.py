import pytest
import torch

from appshot_model.model.config import ModelConfig
from appshot_model.model.networks import Generator, build_networks, crop_context, generator_parameter_count


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_count_matches_the_spec_for_the_paper_setting():
    gen = Generator(27, 10, ModelConfig(features=64, noise_channels=0))
    assert generator_parameter_count(27, 10, 64) == _count(gen) == 1_348_618
    # the default spatial noise field adds two 16 -> 8F FiLM convolutions without bias
    assert _count(Generator(27, 10, ModelConfig(features=64))) == 1_348_618 + 2 * 16 * 512
    assert _count(Generator(27, 10, ModelConfig())) == generator_parameter_count(27, 10, 32, noise_channels=16)


@pytest.mark.parametrize("noise", ["film", "concat"])
@pytest.mark.parametrize("kernel", [3, 4])
@pytest.mark.parametrize("field", [0, 2])
def test_parameter_count_for_variants(noise, kernel, field):
    cfg = ModelConfig(features=4, noise=noise, first_kernel=kernel, noise_dim=7, noise_channels=field)
    assert generator_parameter_count(5, 3, 4, 7, kernel, noise, field) == _count(Generator(5, 3, cfg))


@pytest.mark.parametrize("noise", ["film", "concat"])
def test_shapes_range_and_noise_dependence(noise):
    torch.manual_seed(0)
    cfg = ModelConfig(features=4, noise=noise)
    gen, d1, d2 = build_networks(6, 3, cfg)
    context = torch.rand(5, 6, 12, 12)
    out = gen(context, torch.randn(5, cfg.nz), torch.randn(5, 16, 10, 10))
    assert out.shape == (5, 3, 10, 10) and out.min() >= 0 and out.max() <= 1
    gen.eval()
    z, field = torch.randn(5, cfg.nz), torch.randn(5, 16, 10, 10)
    a, b = gen(context, z, field), gen(context, torch.randn(5, cfg.nz), field)
    c = gen(context, z, torch.randn(5, 16, 10, 10))
    assert not torch.allclose(a, c)  # the spatial field matters from the start
    if noise == "film":  # FiLM starts as the identity: z only matters once training moved its weights
        assert torch.equal(a, b)
        torch.nn.init.normal_(gen.film_sigma.weight, 0.0, 0.05)
        a, b = gen(context, z, field), gen(context, torch.randn(5, cfg.nz), field)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="noise field of 16 channels"):
        gen(context, z)
    cropped = crop_context(context, cfg)
    assert cropped.shape == (5, 6, 10, 10)
    assert torch.equal(cropped, context[:, :, 1:11, 1:11])
    assert d1(out, cropped).shape == (5, 1, 5, 5)
    assert d2(out.sum(1, keepdim=True), cropped).shape == (5, 1, 5, 5)


def test_discriminators_can_be_switched_off():
    gen, d1, d2 = build_networks(6, 3, ModelConfig(features=4, use_d1=False, use_d2=False))
    assert d1 is None and d2 is None


@pytest.mark.parametrize("noise", ["film", "concat"])
def test_scale_noise_folds_a_z_scale_into_the_weights(noise):
    torch.manual_seed(0)
    cfg = ModelConfig(features=4, noise=noise, noise_channels=2)
    gen = Generator(6, 3, cfg).eval()
    for conv in (gen.film_sigma, gen.film_mu) if noise == "film" else ():
        torch.nn.init.normal_(conv.weight)  # FiLM starts as the identity; give z an effect
    context, z, field = torch.rand(2, 6, 12, 12), torch.randn(2, cfg.nz), torch.randn(2, 2, 10, 10)
    expected = gen(context, 0.3 * z, field)
    assert not torch.allclose(expected, gen(context, z, field))
    gen.scale_noise(0.3)
    torch.testing.assert_close(gen(context, z, field), expected)
