"""A run killed with kill -9 (with the code server that started it) is marked failed by the daemon's run
monitoring, and the queue moves on.

The instance uses the repository's own ``dagster.yaml`` (queue, LocalRunLauncher, run monitoring) with one
queue slot and a short poll, a real ``dagster-daemon`` and the repository's workspace layout.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

REPO = Path(__file__).resolve().parent.parent


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _launch(home: Path, workspace: Path, job: str, env: dict) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "job", "launch", "-w", str(workspace), "-j", job],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=home,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    from ifir_pipeline.launcher import run_worker_pid

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
    pid = run_worker_pid(records)
    if pid is None:
        print([r.event_log_entry.dagster_event.message for r in records])
    return pid


def test_a_killed_run_is_marked_failed_and_the_next_queued_run_starts(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    cfg = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert cfg["run_launcher"]["class"] == "LocalRunLauncher" and cfg["run_monitoring"]["enabled"]
    cfg["run_monitoring"]["poll_interval_seconds"] = 2
    cfg["concurrency"]["runs"]["max_concurrent_runs"] = 1
    cfg["run_coordinator"]["config"] = {"dequeue_interval_seconds": 1}
    (home / "dagster.yaml").write_text(yaml.safe_dump(cfg))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "ifir_pipeline_tests.locations.sleepy",
                            "location_name": "sleepy",
                            "working_directory": str(REPO),
                        }
                    }
                ]
            }
        )
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from dagster._daemon.cli import main; sys.exit(main())",
            "run",
            "-w",
            str(workspace),
        ],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _launch(home, workspace, "sleepy", env)
        _launch(home, workspace, "after", env)
        with DagsterInstance.from_config(str(home)) as instance:

            def runs(status):
                return instance.get_runs(RunsFilter(statuses=[status]))

            started = _wait(lambda: runs(DagsterRunStatus.STARTED), 240, "the first run to start")[0]
            assert started.job_name == "sleepy"
            queued = runs(DagsterRunStatus.QUEUED)
            assert [r.job_name for r in queued] == ["after"]  # one slot: it waits
            queued_id = queued[0].run_id
            pid = _wait(lambda: _worker_pid(instance, started.run_id), 120, "the run worker's pid")
            # kill -9 the run worker and the code server that started it (as when the whole `dagster dev`
            # process tree dies): nobody is left to report the run's end but run monitoring
            server = int(Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[1])
            os.kill(pid, signal.SIGKILL)
            os.kill(server, signal.SIGKILL)
            t0 = time.monotonic()
            failed = _wait(
                lambda: instance.get_run_by_id(started.run_id).status == DagsterRunStatus.FAILURE,
                120,
                "run monitoring to mark the killed run failed",
            )
            print(f"killed run marked FAILURE {time.monotonic() - t0:.1f}s after kill -9")
            assert failed
            # the slot is free: the queued run leaves the queue (whether it then succeeds depends on the code
            # server the kill took down coming back, which is the workspace's business, not the queue's)
            left_queue = _wait(
                lambda: instance.get_run_by_id(queued_id).status != DagsterRunStatus.QUEUED,
                120,
                "the queued run to leave the queue",
            )
            assert left_queue

            def said_why():
                logs = instance.all_logs(started.run_id)
                texts = [
                    ((e.dagster_event.message if e.dagster_event else None) or "") + (e.user_message or "")
                    for e in logs
                ]
                return any("is gone (killed or crashed)" in t for t in texts)

            assert _wait(said_why, 30, "the failure to say why")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
