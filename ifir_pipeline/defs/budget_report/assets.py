from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from ifir_pipeline.defs._metadata import png_markdown
from ifir_pipeline.io_manager import read_artifact
from ifir_pipeline.report import build_report, delta_markdown, headline_table, plot_png, to_markdown
from ifir_pipeline.resources import ArtifactStore
from ifir_pipeline.storage import atomic_write_bytes, atomic_write_parquet, atomic_write_text


def fetch_from_s3(store: ArtifactStore) -> int:
    """Bring every followir_scores partition that exists on S3 but not here into the local cache."""
    if not store.s3_bucket:
        return 0
    from ifir_pipeline.io_manager import artifact_dir
    from ifir_pipeline.partitions import budget_recipe_partitions
    from ifir_pipeline.s3_storage import download_current, s3_client

    client = s3_client(store.s3_endpoint_url, max_attempts=store.s3_max_attempts)
    fetched = 0
    for key in budget_recipe_partitions.get_partition_keys():
        folder = artifact_dir(store.asset_root(), "followir_scores", key)
        if not folder.exists():
            rel = folder.relative_to(store.asset_root()).as_posix()
            fetched += download_current(client, store.s3_bucket, f"{store.s3_prefix.rstrip('/')}/assets/{rel}", folder)
    return fetched


def collect_per_query(asset_root: str) -> pl.DataFrame:
    """Every stored followir_scores partition (whatever has been materialized so far)."""
    parts = []
    for folder in sorted(Path(asset_root, "followir_scores").glob("*/*")):
        if folder.is_dir() and not folder.name.startswith("."):
            parts.append(read_artifact(folder)["per_query"])
    return pl.concat(parts) if parts else pl.DataFrame()


@asset(
    group_name="evaluation",
    deps=["followir_scores"],
    code_version="report-v1",
    description="Recipes x budgets: p-MRR and nDCG, deltas against base and instruction_only with paired "
    "bootstrap 95% intervals over queries, and a plot. Reads every followir_scores partition stored so far.",
    kinds={"polars", "matplotlib"},
)
def budget_report(context: AssetExecutionContext, store: ArtifactStore):
    fetch_from_s3(store)
    per_query = collect_per_query(store.asset_root())
    if per_query.height == 0:
        raise ValueError("no followir_scores partitions are materialized yet")
    report = build_report(per_query)
    wide = headline_table(report)
    png = plot_png(report)
    md = "# ifir-pipeline budget report\n\n" + to_markdown(wide) + "\n\n"
    md += "\n\n".join(
        delta_markdown(report, t, m)
        for t, m in report.select("task", "metric").unique().sort("task", "metric").iter_rows()
    )
    out = store.path("reports")
    atomic_write_bytes(out / "budget_report.png", png)
    atomic_write_text(out / "budget_report.md", md)
    atomic_write_parquet(out / "budget_report.parquet", report)
    uri = store.publish(out)
    context.add_output_metadata(
        {
            **({"report_uri": uri} if uri else {}),
            "table": MetadataValue.md(to_markdown(wide)),
            "plot": png_markdown(png, "budget report"),
            "report_markdown": MetadataValue.path(str(out / "budget_report.md")),
            "plot_png": MetadataValue.path(str(out / "budget_report.png")),
            "partitions_scored": per_query.select("budget", "recipe").unique().height,
        }
    )
    return report
