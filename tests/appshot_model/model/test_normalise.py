import json

import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.normalise import Normalisation, fit_normalisation

SERVICES = ["youtube", "netflix"]
ATTRIBUTES = ["population", "landuse_sea", "poi_cafe"]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    traffic = [rng.gamma(2.0, 1e5, (3, 2, 12, 15)).astype(np.float32),
               rng.gamma(2.0, 5e5, (2, 2, 20, 11)).astype(np.float32)]
    contexts = [np.stack([rng.gamma(1, 500, (h, w)), rng.random((h, w)), rng.poisson(3, (h, w))]).astype(np.float32)
                for h, w in ((12, 15), (20, 11))]
    return traffic, contexts


def test_traffic_max_is_per_service_global_pixel_maximum_plus_epsilon():
    traffic, contexts = _data()
    norm = fit_normalisation(traffic, contexts, SERVICES, ATTRIBUTES)
    for s in range(2):
        expected = max(float(t[:, s].max()) for t in traffic) + norm.epsilon
        assert norm.traffic_max[s] == pytest.approx(expected)
    scaled = norm.normalise_traffic(traffic[1])
    assert scaled.max() <= 1.0 and scaled.min() >= 0.0
    assert norm.context_log1p == [True, False, True]
    ctx = np.concatenate([norm.normalise_context(c).reshape(3, -1) for c in contexts], axis=1)
    np.testing.assert_allclose(ctx.max(axis=1), 1.0, rtol=1e-4)


def test_round_trip_through_json_and_denormalise():
    traffic, contexts = _data()
    norm = fit_normalisation(traffic, contexts, SERVICES, ATTRIBUTES)
    data = json.loads(json.dumps({**norm.to_dict(), "hour": "morning", "training_cities": ["a"]}))
    back = Normalisation.from_dict(data)
    assert back == norm
    np.testing.assert_allclose(back.denormalise_traffic(norm.normalise_traffic(traffic[0])), traffic[0], rtol=1e-5)
    np.testing.assert_array_equal(back.normalise_context(contexts[0]), norm.normalise_context(contexts[0]))


def test_bad_shapes_and_missing_fields_are_clear_errors():
    traffic, contexts = _data()
    norm = fit_normalisation(traffic, contexts, SERVICES, ATTRIBUTES)
    with pytest.raises(AppshotInputError, match="2 traffic services"):
        norm.normalise_traffic(np.zeros((3, 4, 4)))
    with pytest.raises(AppshotInputError, match="traffic_max"):
        Normalisation.from_dict({"services": SERVICES, "attributes": ATTRIBUTES})
    with pytest.raises(AppshotInputError, match=r"expected \[time, 2, H, W\]"):
        fit_normalisation([traffic[0][:, :1]], contexts[:1], SERVICES, ATTRIBUTES)
