import json

import pytest
import torch

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.generate import generate_snapshots
from tests.appshot_model.model.test_generate import make_artefact, make_context


def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    artefact = make_artefact()
    artefact.history = {"g_l1": [0.5, 0.25]}
    artefact.discriminators = {"d1": torch.nn.Linear(2, 1)}
    path = artefact.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["model.json", "weights.pt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    meta = json.loads((path / "model.json").read_text())
    assert meta["model_hash"] == artefact.model_hash and meta["torch_version"] == torch.__version__
    assert meta["model_config"]["features"] == 4 and meta["peak_hour"] == "morning"
    back = ModelArtefact.load(path)
    assert back.model_hash == artefact.model_hash
    assert back.attributes == artefact.attributes and back.normalisation == artefact.normalisation
    assert back.history == {"g_l1": [0.5, 0.25]}
    context = make_context()
    a = generate_snapshots(artefact, context, 2, seed=4)
    b = generate_snapshots(back, context, 2, seed=4)
    assert a.values.tobytes() == b.values.tobytes()
    artefact.save(path)  # overwriting an existing artefact directory works
    assert ModelArtefact.load(path).model_hash == artefact.model_hash


def test_model_hash_depends_on_weights_and_config():
    a, b = make_artefact(), make_artefact()
    assert a.model_hash == b.model_hash
    with torch.no_grad():
        b.generator.out.bias.add_(1e-3)
    assert a.model_hash != b.model_hash
    c = make_artefact()
    c.peak_hour = "evening"
    assert c.model_hash != a.model_hash


def test_missing_or_corrupt_files_are_clear_errors(tmp_path):
    with pytest.raises(AppshotInputError, match="missing model.json"):
        ModelArtefact.load(tmp_path / "nowhere")
    path = make_artefact().save(tmp_path / "model")
    (path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(AppshotInputError, match="corrupt"):
        ModelArtefact.load(path)
    path = make_artefact().save(tmp_path / "model2")
    meta = json.loads((path / "model.json").read_text())
    meta["peak_hour"] = "evening"
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(AppshotInputError, match="model_hash"):
        ModelArtefact.load(path)
    (path / "model.json").write_text("{")
    with pytest.raises(AppshotInputError, match="corrupt"):
        ModelArtefact.load(path)


def test_artefact_of_an_older_version_without_a_newer_config_field_still_loads(tmp_path):
    """A config field added later (here: l1_units) takes its default; the recorded hash still verifies."""
    artefact = make_artefact()
    path = artefact.save(tmp_path / "model")
    meta = json.loads((path / "model.json").read_text())
    del meta["model_config"]["l1_units"]
    meta["model_hash"] = ModelArtefact(**{**artefact.__dict__, "recorded_model_config": meta["model_config"]}).model_hash
    (path / "model.json").write_text(json.dumps(meta))
    back = ModelArtefact.load(path)
    assert back.model_hash == meta["model_hash"] != artefact.model_hash and back.model_cfg.l1_units == "level"
    meta["model_config"]["features"] = 5  # a recorded config that does not fit the weights is still refused
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(AppshotInputError, match="does not fit|model_hash"):
        ModelArtefact.load(path)
