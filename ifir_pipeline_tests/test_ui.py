"""The Dagster UI in a real browser: headless Debian chromium driven by Playwright, against dagster-webserver
on 127.0.0.1 serving an instance that holds a materialized tiny chain."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ifir_pipeline_tests.conftest import free_port, wait_for_http

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
    import json

    from dagster import DagsterInstance, materialize

    from ifir_pipeline.definitions import build_assets, build_resources
    from ifir_pipeline.defs.quality_checked_pairs.checks import quality_checks
    from ifir_pipeline.partitions import budget_recipe_key

    home = tmp_path_factory.mktemp("ui_home")
    # nux off: the first-visit community dialog would otherwise appear at a random moment and block clicks
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    root = tmp_path_factory.mktemp("ui_root")
    spec = {
        "root": str(root),
        "train": [{"name": "tiny", "format": "beir", "path": str(tiny_train_beir)}],
        "evaluation": [{"name": "cranfield-if-dev", "format": "followir", "path": str(tiny_followir)}],
    }
    fixture = root / "ui_fixture.json"
    fixture.write_text(json.dumps(spec))
    from ifir_pipeline_tests.locations.ui_defs import fixture_resources

    resources = build_resources(str(root), **fixture_resources(spec))
    asset_defs = build_assets(resources)  # the code versions the webserver's definitions will have
    with DagsterInstance.from_config(str(home)) as instance:
        for selection, partition in (
            (["source_corpora", "mined_negatives"], None),
            (["inverted_instructions", "quality_checked_pairs"], "8"),
            (["trained_checkpoint", "followir_scores"], budget_recipe_key(8, "base")),
            (["trained_checkpoint", "followir_scores"], budget_recipe_key(8, "dual_view")),
            (["budget_report"], None),
        ):
            defs = [*asset_defs, *quality_checks] if "quality_checked_pairs" in selection else asset_defs
            assert materialize(
                defs, selection=selection, partition_key=partition, resources=resources, instance=instance
            ).success
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "IFIR_HOME": str(root),
        "PYTHONPATH": str(Path(__file__).parent.parent),
        "IFIR_UI_FIXTURE": str(fixture),
    }
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
            "ifir_pipeline_tests.locations.ui_defs",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    if not wait_for_http(f"{base}/server_info", 120):
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
        page.wait_for_timeout(2000)
        # the chain just completed with the definitions' own settings: no asset is stale
        assert not page.get_by_text("Code version", exact=True).count()
        assert not page.get_by_text("Upstream data", exact=True).count()
        page.screenshot(path=str(shots / "assets.png"), full_page=True)
        # the lineage view opens its groups collapsed; the link `ifir ui` prints opens every one
        from ifir_pipeline.cli import lineage_url

        page.goto(f"{webserver}/asset-groups", wait_until="networkidle")
        page.get_by_text("synthesis", exact=True).first.wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        assert not page.get_by_text("trained_checkpoint", exact=True).count()
        page.goto(lineage_url(webserver), wait_until="networkidle")
        for name in ("source_corpora", "mined_negatives", "trained_checkpoint", "followir_scores", "budget_report"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)  # longer names are shortened
        page.screenshot(path=str(shots / "lineage_expanded.png"))
        page.goto(f"{webserver}/assets/budget_report", wait_until="networkidle")
        page.get_by_text("summary", exact=True).first.wait_for(timeout=60_000)
        page.get_by_text("plot", exact=True).first.wait_for(timeout=60_000)
        assert not page.get_by_text("Join the Dagster community").count()  # nux is off in this instance
        # the answer without a click: the plot drawn inline, the table with its intervals, what metrics mean
        inline = page.locator("img[src^='data:image/svg+xml']").first
        inline.wait_for(timeout=30_000)
        assert inline.evaluate("img => img.naturalWidth") > 100
        assert page.get_by_text("vs base [95% CI]").count() and page.get_by_text("higher means").count()
        page.screenshot(path=str(shots / "budget_report.png"), full_page=True)
        page.get_by_text("[Show Markdown]").first.click()
        plot = page.locator("img[src^='data:image/png']").first
        plot.wait_for(timeout=30_000)
        assert plot.evaluate("img => img.naturalWidth") > 300  # the PNG plot decoded and rendered
        page.screenshot(path=str(shots / "budget_report_plot.png"), full_page=True)
        page.keyboard.press("Escape")
        # the sensor's page, its test evaluation from cursor 0: budget 8's gate passed, four runs requested
        page.goto(f"{webserver}/automation", wait_until="networkidle")
        page.get_by_text("retrain_on_new_pairs").first.click()
        page.wait_for_load_state("networkidle")
        page.get_by_text("starts from 'now'", exact=False).first.wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "sensor.png"), full_page=True)
        page.get_by_role("button", name="Preview tick result").first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for(timeout=30_000)
        page.screenshot(path=str(shots / "sensor_preview_dialog.png"), full_page=True)
        dialog.get_by_role("textbox").first.fill("0")
        dialog.get_by_role("button", name=re.compile("Continue|Evaluate|Preview")).last.click()
        # budget 8's materialization passed its blocking checks: its four trained core recipes are requested
        page.get_by_text("4 run requests").first.wait_for(timeout=60_000)
        assert page.get_by_text("Requested runs (4)").count()
        page.screenshot(path=str(shots / "sensor_gated_request.png"), full_page=True)
        browser.close()
    print(f"screenshots: {sorted(str(p) for p in shots.glob('*.png'))}")
    assert (shots / "budget_report.png").stat().st_size > 10_000
