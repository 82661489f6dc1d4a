from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, DataVersion, MetadataValue, Output, asset

from ifir_pipeline.defs._metadata import png_markdown
from ifir_pipeline.io_manager import read_artifact
from ifir_pipeline.report import (
    METRIC_HELP,
    build_report,
    delta_markdown,
    headline_table,
    plot_png,
    summary_rows,
    svg_plot_markdown,
    to_markdown,
)
from ifir_pipeline.resources import ArtifactStore
from ifir_pipeline.storage import atomic_write_bytes, atomic_write_parquet, atomic_write_text
from ifir_pipeline.versions import REPORT_CODE, content_version


def fetch_from_s3(store: ArtifactStore) -> int:
    """Bring every followir_scores partition that exists on S3 but not here into the local cache, and the
    quality_checked_pairs partitions they were trained on (the report checks its lineage against them)."""
    if not store.s3_bucket:
        return 0
    from ifir_pipeline.io_manager import artifact_dir
    from ifir_pipeline.partitions import budget_partitions, budget_recipe_partitions
    from ifir_pipeline.s3_storage import download_current, s3_client

    client = s3_client(store.s3_endpoint_url, max_attempts=store.s3_max_attempts)
    fetched = 0
    wanted = [("followir_scores", k) for k in budget_recipe_partitions.get_partition_keys()]
    wanted += [("quality_checked_pairs", k) for k in budget_partitions.get_partition_keys()]
    for name, key in wanted:
        folder = artifact_dir(store.asset_root(), name, key)
        if not folder.exists():
            rel = folder.relative_to(store.asset_root()).as_posix()
            fetched += download_current(client, store.s3_bucket, f"{store.s3_prefix.rstrip('/')}/assets/{rel}", folder)
    return fetched


def collect_per_query(asset_root: str) -> tuple[pl.DataFrame, list[dict]]:
    """Every stored followir_scores partition whose lineage matches the current pairs and code: its per-query
    values; and the others, each with why it is stale (they are left out of the report, never mixed in)."""
    from ifir_pipeline.hashing import frame_hash
    from ifir_pipeline.io_manager import artifact_dir
    from ifir_pipeline.versions import SCORING_CODE, TRAINING_CODE

    parts, stale = [], []
    pairs_hash: dict[str, str | None] = {}
    for folder in sorted(Path(asset_root, "followir_scores").glob("*/*")):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        scores = read_artifact(folder)
        meta = scores.get("meta", {})
        budget, recipe = folder.parent.name, folder.name
        why = []
        if meta.get("scoring_code_version") != SCORING_CODE:
            why.append(f"scored by {meta.get('scoring_code_version') or 'an older version'}, now {SCORING_CODE}")
        if recipe != "base":
            if budget not in pairs_hash:
                pairs_dir = artifact_dir(asset_root, "quality_checked_pairs", budget)
                pairs_hash[budget] = frame_hash(read_artifact(pairs_dir)["accepted"]) if pairs_dir.exists() else None
            if meta.get("pairs_hash") != pairs_hash[budget]:
                why.append("trained on pairs that are no longer budget's accepted pairs")
            if meta.get("training_code_version") != TRAINING_CODE:
                why.append(f"trained by {meta.get('training_code_version') or 'an older version'}, now {TRAINING_CODE}")
        if why:
            stale.append({"budget": budget, "recipe": recipe, "why": "; ".join(why)})
        else:
            parts.append(scores["per_query"])
    return (pl.concat(parts) if parts else pl.DataFrame()), stale


def _table(rows: list[dict[str, str]]) -> MetadataValue:
    """An inline table in the UI (rendered in place, unlike long markdown)."""
    from dagster import TableColumn, TableRecord, TableSchema

    if not rows:
        return MetadataValue.text("no rows")
    columns = list(rows[0])
    return MetadataValue.table(
        records=[TableRecord({c: str(r.get(c, "")) for c in columns}) for r in rows],
        schema=TableSchema(columns=[TableColumn(c, "string") for c in columns]),
    )


@asset(
    group_name="evaluation",
    deps=["followir_scores"],
    code_version=REPORT_CODE,
    description="Recipes x budgets (and writers): p-MRR and nDCG, deltas against base, instruction_only and the "
    "offline writer with seed-aware 95% intervals (seeds, then queries, resampled), and a plot. Reads every "
    "current followir_scores partition; stale ones (other pairs or code) are left out and listed.",
    kinds={"polars", "matplotlib"},
)
def budget_report(context: AssetExecutionContext, store: ArtifactStore):
    fetch_from_s3(store)
    per_query, stale = collect_per_query(store.asset_root())
    for st in stale:
        context.log.warning(f"left out of the report: {st['budget']}|{st['recipe']} ({st['why']})")
    if per_query.height == 0:
        raise ValueError(
            "no current followir_scores partitions are materialized yet"
            + (f" ({len(stale)} stale ones left out)" if stale else "")
        )
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
    return Output(
        report,
        data_version=DataVersion(content_version(report)),
        metadata={
            **({"report_uri": uri} if uri else {}),
            "stale_partitions_left_out": MetadataValue.md(
                to_markdown(pl.DataFrame(stale, schema={"budget": pl.Utf8, "recipe": pl.Utf8, "why": pl.Utf8}))
                if stale
                else "_none_"
            ),
            "summary": _table(summary_rows(report)),
            "p-MRR by budget": MetadataValue.md(svg_plot_markdown(report)),
            "metrics": _table([{"metric": m, "meaning": h} for m, h in METRIC_HELP.items()]),
            "table": MetadataValue.md(to_markdown(wide)),
            "plot": png_markdown(png, "budget report"),
            "report_markdown": MetadataValue.url(f"file://{out / 'budget_report.md'}"),
            "plot_png": MetadataValue.url(f"file://{out / 'budget_report.png'}"),
            "partitions_scored": per_query.select("budget", "recipe").unique().height,
        },
    )
