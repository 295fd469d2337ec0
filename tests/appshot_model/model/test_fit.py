import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import make_context_cube, make_traffic_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.fit import load_run_config, train_peak_hour_model
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.normalise import fit_normalisation

ATTRIBUTES = ["population", "landuse_sea", "poi_cafe"]
SERVICES = ["youtube", "netflix"]


def test_defaults_without_a_file_use_the_given_seed():
    model_cfg, train_cfg = load_run_config(None, seed=7)
    assert model_cfg == ModelConfig() and train_cfg == TrainConfig(seed=7)


def test_yaml_sections_override_defaults_and_file_seed_wins(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  features: 8\n  noise: concat\ntrain:\n  steps: 3\n  seed: 99\n")
    model_cfg, train_cfg = load_run_config(str(path), seed=7)
    assert model_cfg.features == 8 and model_cfg.noise == "concat" and train_cfg.steps == 3 and train_cfg.seed == 99
    path.write_text("train:\n  steps: 3\n")
    assert load_run_config(str(path), seed=7)[1].seed == 7


def test_misspelt_field_names_file_field_and_valid_fields(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  featurs: 8\n")
    with pytest.raises(AppshotInputError, match=r"run\.yaml.*unknown field 'model\.featurs'.*'features'"):
        load_run_config(str(path), seed=0)
    path.write_text("train:\n  batch_size: -1\n")
    with pytest.raises(AppshotInputError, match=r"'train\.batch_size' = -1"):
        load_run_config(str(path), seed=0)
    path.write_text("modle:\n  features: 8\n")
    with pytest.raises(AppshotInputError, match=r"unknown sections \['modle'\]"):
        load_run_config(str(path), seed=0)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(AppshotInputError, match="does not exist"):
        load_run_config(str(tmp_path / "nope.yaml"), seed=0)


def _city(seed: int, height: int, width: int):
    rng = np.random.default_rng(seed)
    grid = Grid("EPSG:32632", 500_000.0, 5_605_000.0, height, width)
    context = make_context_cube(rng.gamma(1.0, 20.0, (3, height, width)), ATTRIBUTES, grid)
    times = pd.date_range("2026-03-02 08:00", periods=3, freq="D")
    traffic = make_traffic_cube(rng.gamma(2.0, 1e4, (3, 2, height, width)), times, SERVICES, grid,
                                label="simulated")
    return context, traffic


def test_train_peak_hour_model_end_to_end(tmp_path):
    (ca, ta), (cb, tb) = _city(0, 12, 13), _city(1, 14, 11)
    norm = fit_normalisation([ta.values, tb.values], [ca.values, cb.values], SERVICES, ATTRIBUTES).to_dict()
    norm.update(hour="morning", training_cities=["a", "b"])
    logs = []
    model_cfg, train_cfg = ModelConfig(features=4, disc_features=4), TrainConfig(steps=4, batch_size=8, log_every=2)
    artefact = train_peak_hour_model({"a": ca, "b": cb}, {"a": ta, "b": tb}, ATTRIBUTES, norm, model_cfg,
                                     train_cfg, hour="morning", log=logs.append)
    assert artefact.peak_hour == "morning" and artefact.units == "bit/s" and artefact.services == SERVICES
    assert artefact.training_cities == ["a", "b"] and "simulated" in artefact.training_label
    assert len(artefact.history["g_l1"]) == 4 and any("step 4/4" in line for line in logs)
    again = train_peak_hour_model({"a": ca, "b": cb}, {"a": ta, "b": tb}, ATTRIBUTES, norm, model_cfg,
                                  train_cfg, hour="morning")
    assert again.model_hash == artefact.model_hash
    assert again.training_inputs_hash == artefact.training_inputs_hash
    back = ModelArtefact.load(artefact.save(tmp_path / "morning"))
    out = generate_snapshots(back, ca, 1, seed=0)
    assert out.shape == (1, 2, 12, 13) and out.attrs["model_hash"] == artefact.model_hash


def test_mismatched_attributes_and_cities_are_errors():
    (ca, ta) = _city(0, 12, 13)
    norm = fit_normalisation([ta.values], [ca.values], SERVICES, ATTRIBUTES).to_dict()
    cfg = (ModelConfig(features=4), TrainConfig(steps=1))
    with pytest.raises(AppshotInputError, match="normalisation was fitted for attributes"):
        train_peak_hour_model({"a": ca}, {"a": ta}, ["population"], norm, *cfg, hour="morning")
    with pytest.raises(AppshotInputError, match="same non-empty set of cities"):
        train_peak_hour_model({"a": ca}, {"b": ta}, ATTRIBUTES, norm, *cfg, hour="morning")
    with pytest.raises(AppshotInputError, match=r"context cube of a lacks attributes \['poi_cafe'\]"):
        train_peak_hour_model({"a": ca.sel(attribute=["population", "landuse_sea"])}, {"a": ta}, ATTRIBUTES,
                              norm, *cfg, hour="morning")
