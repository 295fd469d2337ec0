import numpy as np

from appshot_model.evaluation.baselines import Budget
from appshot_model.evaluation.unseen import generate_unseen
from appshot_model.evaluation.worlds import ArrayWorld
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from appshot_model.traffic.peaks import peak_snapshots


def test_context_only_city_is_generated_from_a_model_of_every_traffic_city():
    cities = [small_demo_city("alpha", 14, 14), small_demo_city("beta", 12, 15, 1)]
    contexts = {c.name: simulate_context(c, 0) for c in cities}
    peaks = {(c.name, "morning"): peak_snapshots(simulate_traffic(c, contexts[c.name], 0, days=7), "morning")
             for c in cities}
    unseen = simulate_context(small_demo_city("gamma", 13, 16, 2), 0)
    world = ArrayWorld("tiny", contexts, peaks, unseen={"gamma": unseen})
    result = generate_unseen(world, "gamma", "morning", samples=3, budget=Budget(steps=2, features=4))
    assert result.samples.shape == (3, 10, 13, 16) and result.training_cities == ("alpha", "beta")
    assert np.isfinite(result.samples).all() and (result.samples >= 0).all()
    assert not np.array_equal(result.samples[0], result.samples[1])
    again = generate_unseen(world, "gamma", "morning", samples=3, budget=Budget(steps=2, features=4))
    np.testing.assert_array_equal(again.samples, result.samples)
    assert result.figure("tiny").startswith(b"\x89PNG")
