"""A run launcher whose run workers the daemon can watch, so a killed run does not hold the queue.

Dagster's ``DefaultRunLauncher`` starts each run in a process on this machine but does not support run
monitoring's worker health check: a run whose process is killed (``kill -9``, OOM killer, a closed laptop)
stays STARTED forever and keeps one of the queue's slots. This launcher is the default one plus that check:
the run worker reports its pid in the run's event log ("Started process for run (pid: N)"), and the daemon's
run monitoring asks whether that process is still alive. A dead worker is marked failed (see ``dagster.yaml``:
``run_monitoring``), and the next queued run starts.
"""

from __future__ import annotations

import os

from dagster import DagsterEventType, DagsterRun, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is not alive either
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def run_worker_pid(records) -> int | None:
    """The pid in the run worker's "Started process for run (pid: N)" engine event, if it was logged."""
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        message = (event.message if event is not None else None) or entry.user_message or ""
        if event is None or "Started process for run" not in message:
            continue
        metadata = getattr(event.event_specific_data, "metadata", None) or {}
        pid = metadata.get("pid")
        value = getattr(pid, "value", pid)
        if value is not None:
            return int(value)
    return None


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` with a worker health check by pid (the daemon and the runs share a machine)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def _worker_pid(self, run: DagsterRun) -> int | None:
        records = self._instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        return run_worker_pid(records)

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid = self._worker_pid(run)
        if pid is None:  # not reported yet: treat as running (the start timeout covers runs that never start)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker pid reported yet")
        if _alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")
