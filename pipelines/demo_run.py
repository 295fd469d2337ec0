"""Run stage jobs for their partitions, in dependency order, on one instance: the whole demo and the
leave-one-city-out evaluation."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from dagster import DagsterInstance, Definitions, MultiPartitionKey

from appshot_model.core.errors import AppshotInputError
from pipelines.definitions import STAGE_JOBS

OnRun = Callable[[str, str | None, int, int], None]


def stage_partitions(defs: Definitions, job_name: str) -> list[str | None]:
    """Partition keys a stage job runs for (``[None]`` for an unpartitioned job)."""
    partitions_def = defs.resolve_job_def(job_name).partitions_def
    if partitions_def is None:
        return [None]
    return list(partitions_def.get_partition_keys())


#: Run config that keeps Dagster's console logger to warnings and errors (the events still go to the
#: instance's event log, and to the run log file when one is given).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def write_run_events(instance: DagsterInstance, run_id: str, job_name: str, log_file: Path) -> None:
    """Append every event of a run (all levels, as Dagster recorded them) to ``log_file``."""
    with log_file.open("a", encoding="utf-8") as out:
        for entry in instance.all_logs(run_id):
            stamp = dt.datetime.fromtimestamp(entry.timestamp, dt.timezone.utc).isoformat(timespec="seconds")
            level = logging.getLevelName(entry.level)
            out.write(f"{stamp} {level:<7} {job_name} {run_id[:8]} {entry.step_key or '-'} "
                      f"{entry.user_message or (entry.dagster_event.event_type_value if entry.dagster_event else '')}\n")


def run_plan(defs: Definitions, instance: DagsterInstance, plan: Sequence[tuple[str, str | None]],
             on_run: OnRun | None = None, quiet: bool = False, log_file: Path | None = None) -> list[str]:
    """Execute ``(job, partition key)`` pairs in order; returns the run ids. Stops at the first failure.

    ``quiet`` keeps Dagster's console output to warnings and errors; ``log_file`` receives every event of
    every run (appended as each run ends, also when it fails)."""
    run_ids: list[str] = []
    for index, (job_name, key) in enumerate(plan):
        if on_run:
            on_run(job_name, key, index, len(plan))
        job = defs.resolve_job_def(job_name)
        partition_key = key if not isinstance(key, MultiPartitionKey) else str(key)
        try:
            result = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=True,
                                            run_config=QUIET_RUN_CONFIG if quiet else None)
        finally:  # the run's events reach the log file also when it fails
            if log_file is not None:
                write_run_events(instance, instance.get_runs(limit=1)[0].run_id, job_name, log_file)
        run_ids.append(result.run_id)
    if on_run:
        on_run("", None, len(plan), len(plan))
    return run_ids


def demo_plan(defs: Definitions) -> list[tuple[str, str | None]]:
    """Every stage job for all its partitions (demo world -> ... -> release)."""
    return [(job, key) for job in STAGE_JOBS for key in stage_partitions(defs, job)]


def run_demo(defs: Definitions, instance: DagsterInstance, on_run: OnRun | None = None, quiet: bool = False,
             log_file: Path | None = None) -> list[str]:
    """Run :func:`demo_plan` (options as :func:`run_plan`)."""
    return run_plan(defs, instance, demo_plan(defs), on_run, quiet=quiet, log_file=log_file)


def evaluation_plan(defs: Definitions, cities: Iterable[str] | None = None,
                    hours: Iterable[str] | None = None) -> list[tuple[str, str | None]]:
    """Demo world and peak traffic for every city (folds train on all other cities), then
    ``loco_job`` for each held-out city x hour asked for, then the report."""
    loco_keys = stage_partitions(defs, "loco_job")
    known_cities = sorted({str(k).split("|")[0] for k in loco_keys})
    known_hours = sorted({str(k).split("|")[1] for k in loco_keys})
    cities, hours = list(cities or known_cities), list(hours or known_hours)
    for given, known, what in ((cities, known_cities, "city"), (hours, known_hours, "hour")):
        unknown = [v for v in given if v not in known]
        if unknown:
            raise AppshotInputError(f"unknown {what} {unknown}; expected some of {known}")
    plan: list[tuple[str, str | None]] = [("demo_world_job", k) for k in stage_partitions(defs, "demo_world_job")]
    plan += [("peak_traffic_job", k) for k in stage_partitions(defs, "peak_traffic_job")
             if str(k).split("|")[1] in hours]
    plan += [("loco_job", k) for k in loco_keys if str(k).split("|")[0] in cities and str(k).split("|")[1] in hours]
    return plan + [("evaluation_report_job", None)]
