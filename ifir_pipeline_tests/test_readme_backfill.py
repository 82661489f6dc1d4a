"""README's command-line backfills, run as written against a real `ifir ui` (dagster dev: webserver + daemon).

The commands are read from README.md (the lines that call `dagster job`), with only the partitions swapped for
the tiny ones of this test; the daemon must finish every run they create, in the workspace's own code location
(no `DagsterCodeLocationNotFoundError`, no phantom location), and `dagster dev` must not warn about the
instance configuration.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from ifir_pipeline_tests.conftest import free_port, wait_for_http

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [line.strip() for line in text.splitlines() if line.strip().startswith(".venv/bin/dagster job ")]


def _adapt(cmd: str) -> list[str]:
    cmd = cmd.replace("--partitions 250,500,1000,2000", "--partitions 8")
    cmd = cmd.replace("--all train_and_score", "--partitions 8|base,8|dual_view")
    args = cmd.split()
    assert args[0] == ".venv/bin/dagster"
    return [sys.executable, "-m", "dagster", *args[1:]]


def test_the_readme_backfills_run_to_completion_in_the_workspace_location(tmp_path, tiny_train_beir, tiny_followir):
    commands = readme_commands()
    assert len(commands) == 3 and all("-w workspace.yaml -l ifir_pipeline" in c for c in commands)
    home = tmp_path / "dagster_home"
    sources = tmp_path / "sources.json"
    sources.write_text(
        json.dumps(
            {
                "train": [{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
                "evaluation": [{"name": "tiny-if", "format": "followir", "path": str(tiny_followir)}],
            }
        )
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IFIR_HOME": str(tmp_path / "artifacts"),
        "IFIR_SOURCES": str(sources),
        "IFIR_BUDGETS": "8,16",
        "PYTHONPATH": str(REPO),
    }
    port = free_port()
    # the server's output goes to a file, never an undrained pipe: a full pipe blocks every run worker that
    # logs to it (they inherit it), and the runs hang STARTED
    ui_log = open(tmp_path / "ui.log", "w")  # noqa: SIM115
    ui = subprocess.Popen(
        [sys.executable, "-m", "ifir_pipeline.cli", "ui", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=ui_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/server_info", 180), "dagster dev did not answer within 180 s"
        t0 = time.monotonic()
        with DagsterInstance.from_config(str(home)) as instance:

            def wait_for(n_runs: int, what: str) -> None:
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    runs = instance.get_runs()
                    done = [r for r in runs if r.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)]
                    if len(runs) >= n_runs and len(done) == len(runs):
                        return
                    time.sleep(3)
                tail = (tmp_path / "ui.log").read_text()[-3000:]
                raise AssertionError(f"{what}: runs did not finish: {[(r.job_name, r.status) for r in runs]}\n{tail}")

            # as a user would: each command after the previous one's runs finished (synthesis reads the pool)
            for cmd, total in zip(commands, (1, 2, 4), strict=True):
                done = subprocess.run(_adapt(cmd), env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, f"{cmd}\n{done.stderr[-2000:]}"
                wait_for(total, cmd)
            runs = instance.get_runs()
            summary = sorted((r.job_name, r.tags.get("dagster/partition", "-"), r.status.value) for r in runs)
            print(f"README backfill runs after {time.monotonic() - t0:.0f}s: {summary}")
            assert len(runs) == 4  # prepare_pool, synthesize_pairs[8], train_and_score[8|base], [8|dual_view]
            assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), summary
            locations = {r.remote_job_origin.location_name for r in runs if r.remote_job_origin}
            assert locations == {"ifir_pipeline"}
            assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        ui_log.close()
    text = (tmp_path / "ui.log").read_text()
    assert "Found a dagster instance configuration value" not in text  # no warning about dagster.yaml
    assert not re.search(r"DagsterCodeLocationNotFoundError", text)
