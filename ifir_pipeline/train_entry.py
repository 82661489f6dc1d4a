"""Training as external compute through Dagster Pipes: ``python -m ifir_pipeline.train_entry``.

The orchestrating asset passes the rows file, output folder, config, seed and lineage as Pipes extras; this
process trains, streams its log lines back, and reports the checkpoint's lineage as a custom message. The
same entry point runs in a local subprocess (default) or in a container launched by PipesECSClient.
"""

from __future__ import annotations

import polars as pl


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    from ifir_pipeline.training import TrainConfig, train_recipe

    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        rows = pl.read_parquet(extras["rows_path"])
        cfg = TrainConfig(**extras["config"])
        info = train_recipe(rows, extras["output_dir"], cfg, int(extras["seed"]), extras["lineage"], log=pipes.log.info)
        pipes.report_custom_message(info)


if __name__ == "__main__":
    main()
