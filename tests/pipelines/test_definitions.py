"""The code location loads with every job, the schedule and the sensor, and rejects partition keys
that do not exist with an error naming the key."""

import pytest
from dagster import DagsterInstance

from appshot_model.traffic.demo import small_demo_city
from assets.resources import AppshotSettings
from pipelines.definitions import STAGE_JOBS, build_definitions


def test_definitions_load_with_jobs_schedule_and_sensor(tmp_path):
    defs = build_definitions(cities=[small_demo_city("alpha", 20, 22)], hours=["morning"],
                             settings=AppshotSettings(data_dir=str(tmp_path)))
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert set(STAGE_JOBS) | {"loco_job", "evaluation_report_job", "region_context_job", "region_traffic_job",
                              "city_hour_release_job"} <= names
    assert defs.resolve_schedule_def("release_weekly") is not None
    assert defs.resolve_sensor_def("region_files_sensor") is not None
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"grid", "context_cube", "traffic_cube", "peak_traffic", "attribute_selection", "normalisation",
            "trained_model", "generated_snapshots", "release", "loco_scores", "evaluation_report",
            "region_context_cube", "region_traffic"} <= keys


@pytest.mark.parametrize("job, key", [("demo_world_job", "atlantis"), ("generation_job", "alpha|night")])
def test_unknown_partition_key_is_a_clear_error(tmp_path, job, key):
    defs = build_definitions(cities=[small_demo_city("alpha", 20, 22)], hours=["morning"],
                             settings=AppshotSettings(data_dir=str(tmp_path)))
    with DagsterInstance.ephemeral() as instance, pytest.raises(Exception, match=key.replace("|", r"\|")):
        defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key)
    assert not (tmp_path / "assets").exists()  # nothing half-written
