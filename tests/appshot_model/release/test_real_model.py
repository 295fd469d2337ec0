"""Releases with the real AppShot artefact and generator (small untrained model)."""

from __future__ import annotations

import json

import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.generate import generate_snapshots
from appshot_model.release import ReleasePart, publish_release, verify_release
from appshot_model.release.build import generate_for_region
from tests.appshot_model.model.test_generate import make_artefact, make_context


@pytest.fixture
def model_dir(tmp_path):
    artefact = make_artefact()
    artefact.training_label = "the simulated demo world"
    return artefact.save(tmp_path / "model")


def test_release_of_real_model_verifies_by_regeneration(tmp_path, model_dir):
    artefact = ModelArtefact.load(model_dir)
    context = make_context()
    snapshots = generate_snapshots(artefact, context, n_samples=2, seed=11)
    part = ReleasePart("aurora", "morning", snapshots, context=context, model_dir=model_dir,
                       training_label=artefact.training_label)
    result = publish_release([part], tmp_path / "releases")
    report = verify_release(result.path)
    assert report.ok, report.problems
    assert report.regenerated == ["aurora/morning"]
    card = json.loads((result.path / "card.json").read_text())
    assert sorted(card["parts"][0]["model_files"]) == ["models/morning/model.json", "models/morning/weights.pt"]


def test_generate_for_region_with_real_model(tmp_path, model_dir):
    region = tmp_path / "vaduz.yaml"
    region.write_text("name: Vaduz\n")

    def load_region(path):
        return type("Region", (), {"name": "Vaduz"})()

    def build_context(region, progress=False):
        return make_context(), {"sources": [{"name": "osm", "path": "liechtenstein-latest.osm.pbf"}]}

    result = generate_for_region(model_dir, region, "morning", 2, 3, tmp_path / "out",
                                 region_loader=load_region, context_builder=build_context)
    card = json.loads((result.path / "card.json").read_text())
    assert card["parts"][0]["statement"] == \
        "synthetic: model trained on the simulated demo world applied to real context of Vaduz"
    assert verify_release(result.path).ok
    with pytest.raises(AppshotInputError, match="trained for the morning peak"):
        generate_for_region(model_dir, region, "evening", 2, 3, tmp_path / "out2",
                            region_loader=load_region, context_builder=build_context)

    def build_other(region, progress=False):
        return make_context(attributes=["population", "poi_shop"]), {}

    with pytest.raises(AppshotInputError, match="needs attributes"):
        generate_for_region(model_dir, region, "morning", 2, 3, tmp_path / "out3",
                            region_loader=load_region, context_builder=build_other)
