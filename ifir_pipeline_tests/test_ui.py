"""The Dagster UI in a real browser: headless Debian chromium driven by Playwright, against dagster-webserver
on 127.0.0.1 serving an instance that holds a materialized tiny chain."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ifir_pipeline_tests.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's chromium)"
)
ASSETS = [
    "source_corpora",
    "mined_negatives",
    "inverted_instructions",
    "quality_checked_pairs",
    "trained_checkpoint",
    "followir_scores",
    "budget_report",
]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, tiny_train_beir, tiny_followir):
    from dagster import DagsterInstance, materialize

    from ifir_pipeline.definitions import ASSETS as ASSET_DEFS
    from ifir_pipeline.definitions import build_resources
    from ifir_pipeline.partitions import budget_recipe_key
    from ifir_pipeline.resources import DataSources, EvaluationSettings, QualitySettings, TrainingSettings

    home = tmp_path_factory.mktemp("ui_home")
    # nux off: the first-visit community dialog would otherwise appear at a random moment and block clicks
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    root = tmp_path_factory.mktemp("ui_root")
    resources = build_resources(
        str(root),
        sources=DataSources(
            train=[{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
            evaluation=[{"name": "cranfield-if-dev", "format": "followir", "path": str(tiny_followir)}],
        ),
        training=TrainingSettings(seeds=[1], batch_size=8, max_seq_length=32),
        evaluation=EvaluationSettings(general=False),
        quality=QualitySettings(min_accepted_share=0.3),
    )
    with DagsterInstance.from_config(str(home)) as instance:
        for selection, partition in (
            (["source_corpora", "mined_negatives"], None),
            (["inverted_instructions", "quality_checked_pairs"], "8"),
            (["trained_checkpoint", "followir_scores"], budget_recipe_key(8, "base")),
            (["trained_checkpoint", "followir_scores"], budget_recipe_key(8, "dual_view")),
            (["budget_report"], None),
        ):
            assert materialize(
                ASSET_DEFS, selection=selection, partition_key=partition, resources=resources, instance=instance
            ).success
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "IFIR_HOME": str(root)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "ifir_pipeline.definitions",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/server_info", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("dagster-webserver did not answer within 120 s")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


def test_asset_graph_and_budget_report_in_a_browser(webserver, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("IFIR_UI_SCREENSHOTS", tmp_path))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{webserver}/assets", wait_until="networkidle")
        for name in ASSETS:
            page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "assets.png"), full_page=True)
        page.goto(f"{webserver}/assets/budget_report", wait_until="networkidle")
        page.get_by_text("table", exact=True).first.wait_for(timeout=60_000)
        page.get_by_text("plot", exact=True).first.wait_for(timeout=60_000)
        assert not page.get_by_text("Join the Dagster community").count()  # nux is off in this instance
        page.screenshot(path=str(shots / "budget_report.png"), full_page=True)
        page.get_by_text("[Show Markdown]").first.click()
        plot = page.locator("img[src^='data:image/png']").first
        plot.wait_for(timeout=30_000)
        assert plot.evaluate("img => img.naturalWidth") > 300  # the PNG plot decoded and rendered
        page.screenshot(path=str(shots / "budget_report_plot.png"), full_page=True)
        browser.close()
    print(f"screenshots: {shots / 'assets.png'}, {shots / 'budget_report.png'}, {shots / 'budget_report_plot.png'}")
    assert (shots / "budget_report.png").stat().st_size > 10_000
