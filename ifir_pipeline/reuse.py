"""Materialize only what is missing or stale: the CLI's version of the UI's "Materialize stale and missing".

Staleness is Dagster's own (code versions and data versions, see :mod:`ifir_pipeline.versions`), read with the
same resolver the UI uses, one step at a time: after a step runs, what depends on it is asked again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, DagsterInstance, Definitions, MultiPartitionKey


@dataclass
class StepOutcome:
    asset: str
    partition: str | None
    ran: bool
    why: str


@dataclass
class ReusePlan:
    outcomes: list[StepOutcome] = field(default_factory=list)

    @property
    def ran(self) -> list[StepOutcome]:
        return [o for o in self.outcomes if o.ran]

    @property
    def reused(self) -> list[StepOutcome]:
        return [o for o in self.outcomes if not o.ran]


def _resolver(instance: DagsterInstance, defs: Definitions):
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def status(instance: DagsterInstance, defs: Definitions, asset: str, partition: Any) -> tuple[bool, str]:
    """``(needs a run, why)`` for one asset partition."""
    from dagster._core.definitions.data_version import StaleStatus

    key = str(partition) if isinstance(partition, MultiPartitionKey) else partition
    resolver = _resolver(instance, defs)
    state = resolver.get_status(AssetKey(asset), key)
    if state == StaleStatus.MISSING:
        return True, "missing"
    if state == StaleStatus.STALE:
        causes = resolver.get_stale_root_causes(AssetKey(asset), key) or resolver.get_stale_causes(AssetKey(asset), key)
        described = "; ".join(
            f"{c.key.asset_key.to_user_string()}"
            + (f"[{c.key.partition_key}]" if c.key.partition_key else "")
            + f": {c.reason}"
            for c in causes[:3]
        )
        return True, f"stale ({described or 'upstream changed'})"
    return False, "up to date"


def failure_message(result) -> str:
    """The cause of a failed in-process run, as its step said it (a Failure's description, an error's message)."""
    for event in result.all_events:
        if event.is_step_failure:
            error = getattr(event.event_specific_data, "error", None)
            if error is not None:
                text = error.message.strip()
                return text.split(": ", 1)[1] if text.startswith("dagster.") and ": " in text else text
    failures = [e for e in result.all_events if e.is_failure]
    return failures[0].message if failures else "run failed"


def run_if_needed(
    instance: DagsterInstance,
    defs: Definitions,
    assets: Sequence[str],
    partition: Any,
    materialize_fn: Callable[[list[str], Any], None],
    plan: ReusePlan,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> None:
    """Ask for each asset in order whether it needs a run; run the ones that do, each after the previous."""
    label = str(partition) if partition is not None else None
    for asset in assets:
        needed, why = (True, "--force") if force else status(instance, defs, asset, partition)
        where = f"{asset}" + (f"[{label}]" if label else "")
        if needed:
            log(f"ifir: running {where}: {why}")
            materialize_fn([asset], partition)
        else:
            log(f"ifir: reusing {where}: {why}")
        plan.outcomes.append(StepOutcome(asset, label, needed, why))


def materialize_stale_and_missing(
    resources: dict[str, Any],
    budgets: Sequence[int],
    recipes: Sequence[str],
    instance: DagsterInstance,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> ReusePlan:
    """The main job: pool, then per budget synthesis and the gate, per recipe training and scoring, then the
    report; every step only if it is missing or stale (everything with ``force``)."""
    from dagster import materialize

    from ifir_pipeline.definitions import build_assets
    from ifir_pipeline.defs.quality_checked_pairs.checks import quality_checks
    from ifir_pipeline.partitions import budget_recipe_key

    assets = build_assets(resources)
    defs = Definitions(assets=assets, asset_checks=quality_checks, resources=resources)
    plan = ReusePlan()

    def run(selection: list[str], partition: Any) -> None:
        with_checks = "quality_checked_pairs" in selection
        result = materialize(
            [*assets, *quality_checks] if with_checks else assets,
            selection=selection,
            partition_key=partition,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"ifir: materializing {selection} ({partition}) failed: {failure_message(result)}")
        if with_checks:
            failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
            if failed:
                log(f"ifir: quality checks failed for {partition}: {', '.join(failed)}")

    def step(names: list[str], partition: Any = None) -> None:
        run_if_needed(instance, defs, names, partition, run, plan, force=force, log=log)

    step(["source_corpora", "mined_negatives"])
    for b in budgets:
        step(["inverted_instructions", "quality_checked_pairs"], str(b))
        for r in recipes:
            step(["trained_checkpoint", "followir_scores"], budget_recipe_key(b, r))
    step(["budget_report"])
    return plan
