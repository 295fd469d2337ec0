"""Schedules. ``release_schedule``: rebuild the gathered release every week.

It is created STOPPED: switch it on in the UI (Automation -> Schedules -> release_weekly) or with
``dagster schedule start release_weekly -m pipelines.definitions``; it needs the daemon
(``dagster dev`` runs one). Each tick materialises ``release``; the release id is
``<date>-<content hash>``, so a week with unchanged generated data publishes a new dated id
with the same content hash, and a re-run on the same day reports "already published".
"""

from __future__ import annotations

from typing import Any

from dagster import DefaultScheduleStatus, JobDefinition, ScheduleDefinition

#: Mondays 03:00 (in ``execution_timezone``).
WEEKLY_CRON = "0 3 * * 1"


def release_schedule(job: JobDefinition | Any, cron: str = WEEKLY_CRON,
                     timezone: str = "UTC") -> ScheduleDefinition:
    """Weekly schedule of ``job`` (normally ``release_job``), stopped by default."""
    return ScheduleDefinition(name="release_weekly", job=job, cron_schedule=cron, execution_timezone=timezone,
                              default_status=DefaultScheduleStatus.STOPPED,
                              description="Weekly: gather the generated snapshots into a new versioned release.")
