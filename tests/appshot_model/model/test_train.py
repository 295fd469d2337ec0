import numpy as np
import pytest
import torch

from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.networks import build_networks
from appshot_model.model.train import (HISTORY_KEYS, GanStep, PatchSampler, service_mean_levels, tiles_per_step,
                                       train_gan)

TINY = ModelConfig(features=4, disc_features=4)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    contexts = [rng.random((3, 12, 14)).astype(np.float32), rng.random((3, 15, 11)).astype(np.float32)]
    traffic = [rng.random((2, 2, 12, 14)).astype(np.float32), rng.random((3, 2, 15, 11)).astype(np.float32)]
    return contexts, traffic


def _run(model_cfg=TINY, seed=0, steps=6):
    contexts, traffic = _data()
    cfg = TrainConfig(steps=steps, batch_size=8, seed=seed, device="cpu", log_every=3)
    return train_gan(contexts, traffic, np.array([0.5, 0.5], np.float32), model_cfg, cfg)


def test_same_seed_gives_bitwise_identical_weights_and_other_seed_differs():
    a, da, ha = _run()
    b, db, hb = _run()
    c, _, _ = _run(seed=1)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert torch.equal(da["d1"].net[0].weight, db["d1"].net[0].weight)
    assert ha == hb
    assert not torch.equal(a.out.weight, c.out.weight)
    assert sorted(ha) == sorted(HISTORY_KEYS) and all(len(v) == 6 for v in ha.values())
    assert not a.training


def test_global_rng_is_left_untouched():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    _run(steps=1)
    assert torch.equal(torch.rand(1), expected)


@pytest.mark.parametrize(("use_d1", "use_d2"), [(False, False), (True, False), (False, True)])
def test_ablations_drop_discriminators_and_their_losses(use_d1, use_d2):
    _, discs, history = _run(ModelConfig(features=4, disc_features=4, use_d1=use_d1, use_d2=use_d2), steps=2)
    assert sorted(discs) == [n for n, on in (("d1", use_d1), ("d2", use_d2)) if on]
    assert (len(history["d1"]) > 0) == use_d1 and (len(history["g_adv_d2"]) > 0) == use_d2
    assert len(history["g_l1"]) == 2


def test_l1_only_training_reduces_the_l1_loss():
    cfg = ModelConfig(features=4, use_d1=False, use_d2=False)
    contexts, traffic = _data()
    traffic = [np.full_like(t, 0.8) for t in traffic]
    _, _, history = train_gan(contexts, traffic, np.array([0.5, 0.5], np.float32), cfg,
                              TrainConfig(steps=60, batch_size=8, lr_g=1e-2, device="cpu"))
    assert np.mean(history["g_l1"][-5:]) < 0.5 * np.mean(history["g_l1"][:5])


def test_sampler_returns_matching_context_and_traffic_patches():
    contexts, traffic = _data()
    # make context channel 0 equal to traffic service 0 of snapshot 0, so alignment is checkable
    traffic = [np.repeat(t[:1], t.shape[0], axis=0) for t in traffic]
    contexts = [np.concatenate([t[0, :1], c[1:]]) for t, c in zip(traffic, contexts, strict=True)]
    sampler = PatchSampler(contexts, traffic, TINY, torch.device("cpu"), seed=0)
    batch = sampler.sample(40)
    assert batch.context.shape == (40, 3, 12, 12) and batch.real.shape == batch.mean.shape == (40, 2, 10, 10)
    assert torch.equal(batch.context[:, 0, 1:11, 1:11], batch.real[:, 0])
    assert torch.allclose(batch.mean, batch.real)  # every day is the same here


def test_tiles_carry_the_mean_over_days_of_their_cells():
    contexts, traffic = _data()
    sampler = PatchSampler(contexts, traffic, TINY, torch.device("cpu"), seed=0, tile=11)
    batch = sampler.sample(30)
    assert batch.context.shape == (30, 3, 13, 13) and batch.real.shape == (30, 2, 11, 11)
    means = [torch.from_numpy(t.mean(axis=0)) for t in traffic]
    for mean_tile in batch.mean:  # each tile's mean is a window of one city's mean map
        assert any(torch.allclose(mean_tile, m[:, r:r + 11, c:c + 11])
                   for m in means for r in range(m.shape[1] - 10) for c in range(m.shape[2] - 10))


def test_small_cities_get_more_tiles_per_step():
    """About batch_size x tile^2 cells per step: 4 tiles of 32 x 32, 7 of 25 x 25 (bonn), 34 of 11 x 11 (aachen);
    per-patch noise trains on batch_size patches."""
    cfg = TrainConfig(batch_size=4, tile=32)
    assert [tiles_per_step(t, ModelConfig(), cfg) for t in (32, 25, 11)] == [4, 7, 34]
    assert tiles_per_step(10, ModelConfig(noise_scope="patch"), cfg) == 4


def test_generator_step_leaves_the_discriminators_gradients_and_training_alone():
    contexts, traffic = _data()
    cfg = TrainConfig(batch_size=2, tile=10, device="cpu")
    gen, d1, d2 = build_networks(3, 2, TINY)
    discs = {"d1": d1, "d2": d2}
    step = GanStep(gen, discs, np.array([0.5, 0.5]), service_mean_levels(traffic), TINY, cfg, torch.device("cpu"))
    params = [p for d in discs.values() for p in d.parameters()]
    at_update, update = [], step.opt_d.step

    def spy(*args, **kwargs):  # the discriminators' gradients when their optimiser steps
        at_update[:] = [p.grad.clone() for p in params]
        return update(*args, **kwargs)

    step.opt_d.step = spy
    before = [p.detach().clone() for p in params]
    sampler = PatchSampler(contexts, traffic, TINY, torch.device("cpu"), seed=0, tile=10)
    step(sampler.sample(2), torch.Generator().manual_seed(0))
    assert all(p.requires_grad for p in params)  # frozen only while the generator's loss is backpropagated
    assert all(torch.equal(p.grad, g) for p, g in zip(params, at_update, strict=True))
    assert any(not torch.equal(p, b) for p, b in zip(params, before, strict=True))
    assert all(p.grad is not None for p in gen.parameters())
