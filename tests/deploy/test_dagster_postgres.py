"""deploy/dagster-postgres.yaml against a real PostgreSQL 15 server started by the fixture:
concurrent runs of one job write their runs and events to PostgreSQL, and the queued run
coordinator drains submitted runs through the daemon without exceeding its concurrency limit."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LOCATION = Path(__file__).with_name("pg_location.py")
DAGSTER = Path(sys.executable).with_name("dagster")
DAEMON = Path(sys.executable).with_name("dagster-daemon")
CONFIG = REPO / "deploy" / "dagster-postgres.yaml"
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.skipif(not DAGSTER.exists(), reason=f"dagster CLI not beside {sys.executable}")


@pytest.fixture
def pg(postgres_server, request):
    """A fresh database of the session's server for this test."""
    return postgres_server.new_database(f"dagster_{request.node.name[:40].lower()}")


@pytest.fixture
def pg_home(pg, tmp_path, monkeypatch) -> dict[str, str]:
    """A DAGSTER_HOME holding the deploy config, and the environment a Dagster process needs."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(CONFIG, home / "dagster.yaml")
    env = {**os.environ, **pg.env(), "DAGSTER_HOME": str(home),
           "APPSHOT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    for key in (*pg.env(), "DAGSTER_HOME", "APPSHOT_DATA_DIR"):
        monkeypatch.setenv(key, env[key])
    return env


def _records(instance) -> list:
    return sorted(instance.get_run_records(), key=lambda r: r.start_time or 0)


def _overlap(intervals: list[tuple[float, float]]) -> int:
    """Largest number of the ``(start, end)`` intervals that contain one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _time, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def _assert_in_postgres(pg, run_ids: list[str]) -> None:
    rows = dict(pg.query("SELECT run_id, status FROM runs"))
    assert {rows.get(run_id) for run_id in run_ids} == {"SUCCESS"}
    counts = dict(pg.query(
        "SELECT run_id, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY run_id"))
    assert all(counts.get(run_id) == 3 for run_id in run_ids), counts  # grid, context_cube, traffic_cube


def test_config_is_valid_and_uses_postgres(pg_home):
    from dagster import DagsterInstance
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    limits = yaml.safe_load(CONFIG.read_text())["run_coordinator"]["config"]
    assert limits["max_concurrent_runs"] == 2
    assert "password: " not in CONFIG.read_text()  # credentials only from the environment


def test_two_runs_of_one_job_at_once(pg_home, pg, tmp_path):
    from dagster import DagsterInstance

    processes = [subprocess.Popen([str(DAGSTER), "job", "execute", "-f", str(LOCATION), "-a", "defs",
                                   "-j", "demo_world_job", "--tags", f'{{"dagster/partition": "{city}"}}'],
                                  env=pg_home, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
                 for city in ("alpha", "beta")]
    outputs = [p.communicate(timeout=RUN_TIMEOUT_S)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(outputs)
    with DagsterInstance.get() as instance:
        records = _records(instance)
        assert [r.dagster_run.status.value for r in records] == ["SUCCESS", "SUCCESS"]
        assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == ["alpha", "beta"]
        assert _overlap([(r.start_time, r.end_time) for r in records]) == 2  # both executing at one moment
    _assert_in_postgres(pg, [r.dagster_run.run_id for r in records])
    for city in ("alpha", "beta"):
        assert (tmp_path / "data" / "assets" / "traffic_cube" / f"{city}.nc").is_file()


def _start(command: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    """Kill a process started by :func:`_start` and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_queued_runs_drain_through_the_daemon_within_the_limit(pg_home, pg, tmp_path):
    """Three runs of one job (a backfill of three partitions) queued, then drained by ``dagster-daemon run``
    (one code server for the CLI, the daemon and the run workers): all succeed, two at once, never three."""
    from dagster import DagsterInstance, DagsterRunStatus

    socket_path = tmp_path / "code.sock"
    server = _start([str(DAGSTER), "api", "grpc", "-f", str(LOCATION), "-a", "defs", "--socket", str(socket_path)],
                    pg_home, tmp_path)
    daemon = None
    try:
        target = ["--grpc-socket", str(socket_path)]
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while subprocess.run([str(DAGSTER), "api", "grpc-health-check", "--socket", str(socket_path)],
                             env=pg_home, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and server.poll() is None, "code server did not start"
            time.sleep(0.5)
        backfill = subprocess.run([str(DAGSTER), "job", "backfill", *target, "-j", "demo_world_job",
                                   "--partitions", "alpha,beta,gamma", "--noprompt"], env=pg_home, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        with DagsterInstance.get() as instance:
            assert [r.dagster_run.status for r in _records(instance)] == [DagsterRunStatus.QUEUED] * 3
            daemon = _start([str(DAEMON), "run", *target], pg_home, tmp_path)
            while time.monotonic() < deadline:
                records = _records(instance)
                if all(r.dagster_run.is_finished for r in records):
                    break
                time.sleep(0.5)
            assert [r.dagster_run.status for r in records] == [DagsterRunStatus.SUCCESS] * 3
    finally:
        for process in (daemon, server):
            if process is not None:
                _stop(process)
    _assert_in_postgres(pg, [r.dagster_run.run_id for r in records])
    # Launched (dequeued) to finished, as the coordinator counts runs in progress: two at once, never three.
    times: dict[str, dict[str, float]] = {}
    for run_id, event, stamp in pg.query("SELECT run_id, dagster_event_type, timestamp FROM event_logs "
                                         "WHERE dagster_event_type IN ('PIPELINE_STARTING', 'PIPELINE_SUCCESS')"):
        times.setdefault(run_id, {})[event] = stamp.timestamp()
    assert _overlap([(t["PIPELINE_STARTING"], t["PIPELINE_SUCCESS"]) for t in times.values()]) == 2
