"""Release assets, the weekly schedule and the region-folder sensor, with fake generated inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import (AssetSelection, AssetSpec, DagsterInstance, DefaultScheduleStatus, Definitions, MultiPartitionKey,
                     SkipReason, asset, build_sensor_context, define_asset_job, materialize)

from appshot_model.core.cube import write_cube
from appshot_model.evaluation.privacy import PrivacyAudit
from appshot_model.release import list_releases, verify_release
from assets.partitions import city_hour_partitions, city_partitions, hour_partitions, region_partitions
from assets.release import build_release_assets
from assets.resources import AppshotSettings
from pipelines.io_managers import io_managers
from pipelines.schedules import release_schedule
from pipelines.sensors import region_sensor
from tests.appshot_model.release import conftest as release_fakes


@pytest.fixture(scope="module")
def fakes():
    """The fake model, generator and run folder of the release tests."""
    return release_fakes


def _run_folder(fakes, tmp_path: Path, blocked: str = "") -> Path:
    """Generated parts, context, model and the privacy audit of a run (``blocked`` city fails the gate)."""
    assets_dir = tmp_path / "data" / "assets"
    audit = []
    for city, hour, seed in [("aurora", "morning", 1), ("borealis", "morning", 2)]:
        part = fakes.make_part(tmp_path, city, hour, seed=seed, samples=2)
        write_cube(part.snapshots, assets_dir / "generated_snapshots" / city / f"{hour}.nc")
        write_cube(part.context, assets_dir / "context_cube" / f"{city}.nc")
        status = "blocked" if city == blocked else "pass"
        audit.append({**PrivacyAudit(city, hour, 12, 4, 2, status, 0.02, 0.025, 0.8, 0.55, 0.4,
                                     ["attack AUC 0.99 > 0.8"] if status == "blocked" else []).to_dict(),
                      "model_hash": part.snapshots.attrs["model_hash"], "seed": seed})
    (assets_dir / "privacy_audit.json").write_text(json.dumps(audit))
    fakes.make_model_dir(assets_dir / "trained_model" / "morning")
    return assets_dir


def test_release_assets_materialise(fakes, tmp_path, monkeypatch):
    import appshot_model.release.build as build
    import appshot_model.release.verify as verify

    monkeypatch.setattr(build, "load_model", fakes.FakeArtefact)
    monkeypatch.setattr(verify, "_default_loader", fakes.FakeArtefact)
    monkeypatch.setattr(verify, "_default_generate", fakes.fake_generate)
    assets_dir = _run_folder(fakes, tmp_path)
    city_hour = city_hour_partitions(city_partitions(["aurora", "borealis"]), hour_partitions(["morning"]))
    upstream = [AssetSpec("generated_snapshots", partitions_def=city_hour).with_io_manager_key("cube_io_manager"),
                AssetSpec("context_cube", partitions_def=city_partitions(["aurora", "borealis"]))
                .with_io_manager_key("cube_io_manager"),
                AssetSpec("trained_model", partitions_def=hour_partitions(["morning"])), AssetSpec("privacy_audit"),
                AssetSpec("evaluation_report")]
    release_assets = build_release_assets(city_hour)
    settings = AppshotSettings(data_dir=str(tmp_path / "data"))
    resources = {"settings": settings, **io_managers(str(assets_dir))}
    for city in ("aurora", "borealis"):
        result = materialize([*upstream, release_assets[0]], resources=resources,
                             partition_key=MultiPartitionKey({"city": city, "hour": "morning"}),
                             selection=["city_hour_release"])
        assert result.success
        meta = result.asset_materializations_for_node("city_hour_release")[0].metadata
        assert meta["verified"].value is True and meta["files"].value > 5
        assert Path(meta["release_path"].value).is_dir() and "preview" in meta
        assert "sha256" in meta["checksums"].value
    gathered = materialize([*upstream, *release_assets], resources=resources, selection=["release"])
    assert gathered.success
    meta = gathered.asset_materializations_for_node("release")[0].metadata
    assert meta["parts"].value == "aurora/morning, borealis/morning"
    releases = list_releases(tmp_path / "data" / "releases")
    assert [str(p) for p in releases] == [meta["release_path"].value]
    assert verify_release(releases[0], load_model=fakes.FakeArtefact, generate=fakes.fake_generate).ok
    card = json.loads((releases[0] / "card.json").read_text())
    assert card["fidelity"] is None  # evaluation_report never materialised: the card says so
    assert "evaluation_report" in (releases[0] / "card.md").read_text()
    again = materialize([*upstream, *release_assets], resources=resources, selection=["release"])
    assert again.asset_materializations_for_node("release")[0].metadata["status"].value == "already published"
    card = json.loads((releases[0] / "card.json").read_text())
    assert [p["privacy"]["dcr_ratio"] for p in card["parts"]] == [0.8, 0.8]
    assert "## Privacy" in (releases[0] / "card.md").read_text()


def test_city_hour_release_refuses_a_part_the_privacy_gate_blocks(fakes, tmp_path, monkeypatch):
    import appshot_model.release.build as build

    monkeypatch.setattr(build, "load_model", fakes.FakeArtefact)
    assets_dir = _run_folder(fakes, tmp_path, blocked="aurora")
    city_hour = city_hour_partitions(city_partitions(["aurora", "borealis"]), hour_partitions(["morning"]))
    upstream = [AssetSpec("generated_snapshots", partitions_def=city_hour).with_io_manager_key("cube_io_manager"),
                AssetSpec("context_cube", partitions_def=city_partitions(["aurora", "borealis"]))
                .with_io_manager_key("cube_io_manager"),
                AssetSpec("trained_model", partitions_def=hour_partitions(["morning"])), AssetSpec("privacy_audit")]
    resources = {"settings": AppshotSettings(data_dir=str(tmp_path / "data")), **io_managers(str(assets_dir))}
    result = materialize([*upstream, build_release_assets(city_hour)[0]], resources=resources, raise_on_error=False,
                         partition_key=MultiPartitionKey({"city": "aurora", "hour": "morning"}),
                         selection=["city_hour_release"])
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "privacy gate blocks aurora x morning" in failure.cause.message
    assert list_releases(tmp_path / "data" / "releases" / "parts" / "aurora" / "morning") == []


def test_weekly_schedule_is_stopped_and_loads():
    @asset
    def release() -> int:
        return 1

    job = define_asset_job("release_job", AssetSelection.assets("release"))
    schedule = release_schedule(job)
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert schedule.cron_schedule == "0 3 * * 1"
    defs = Definitions(assets=[release], jobs=[job], schedules=[schedule])
    assert defs.get_schedule_def("release_weekly").job_name == "release_job"


def test_region_sensor_adds_new_region_files(tmp_path):
    @asset(partitions_def=region_partitions)
    def region_context() -> int:
        return 1

    job = define_asset_job("region_generation_job", AssetSelection.assets(region_context),
                           partitions_def=region_partitions)
    regions = tmp_path / "regions"
    regions.mkdir()
    (regions / "vaduz.yaml").write_text("name: vaduz\n")
    (regions / "notes.txt").write_text("ignored")
    (regions / "bad name.yaml").write_text("ignored: unsafe partition key")
    sensor_def = region_sensor(job, regions)
    defs = Definitions(assets=[region_context], jobs=[job], sensors=[sensor_def])
    with DagsterInstance.ephemeral() as instance:
        result = sensor_def(build_sensor_context(instance=instance, definitions=defs))
        assert [r.partition_key for r in result.run_requests] == ["vaduz"]
        assert result.dynamic_partitions_requests[0].partition_keys == ["vaduz"]
        assert result.dynamic_partitions_requests[0].partitions_def_name == "region"
        instance.add_dynamic_partitions("region", ["vaduz"])
        skipped = sensor_def(build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(skipped, SkipReason) and "no new region files" in skipped.skip_message
        (regions / "schaan.yml").write_text("name: schaan\n")
        result = sensor_def(build_sensor_context(instance=instance, definitions=defs))
        assert [r.partition_key for r in result.run_requests] == ["schaan"]
