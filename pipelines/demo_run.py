"""Run the whole demo: every stage job for every partition, in dependency order, on one instance."""

from __future__ import annotations

from collections.abc import Callable

from dagster import DagsterInstance, Definitions, MultiPartitionKey

from pipelines.definitions import STAGE_JOBS


def stage_partitions(defs: Definitions, job_name: str) -> list[str | None]:
    """Partition keys a stage job runs for (``[None]`` for an unpartitioned job)."""
    partitions_def = defs.resolve_job_def(job_name).partitions_def
    if partitions_def is None:
        return [None]
    return list(partitions_def.get_partition_keys())


def run_demo(defs: Definitions, instance: DagsterInstance,
             on_run: Callable[[str, str | None, int, int], None] | None = None) -> list[str]:
    """Execute the stage jobs for all partitions; returns the run ids. Stops at the first failure."""
    run_ids: list[str] = []
    plan = [(job, key) for job in STAGE_JOBS for key in stage_partitions(defs, job)]
    for index, (job_name, key) in enumerate(plan):
        if on_run:
            on_run(job_name, key, index, len(plan))
        job = defs.resolve_job_def(job_name)
        partition_key = key if not isinstance(key, MultiPartitionKey) else str(key)
        result = job.execute_in_process(instance=instance, partition_key=partition_key, raise_on_error=True)
        run_ids.append(result.run_id)
    return run_ids
