"""Faults that must not stick: wrong keys, concurrent writers, stale resumes, bad input that must be named."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, materialize

from ifir_pipeline.definitions import ASSETS, build_resources
from ifir_pipeline.io_manager import artifact_dir, read_artifact, write_artifact
from ifir_pipeline.loaders import DOCUMENT_SCHEMA, EXAMPLE_SCHEMA
from ifir_pipeline.mining import NEGATIVE_SCHEMA
from ifir_pipeline.resources import AchievabilitySettings, ArtifactStore, SynthesisSettings
from ifir_pipeline.synthesis.cache import ResponseCache
from ifir_pipeline.testing.messages_api_server import Behaviour, MessagesAPIServer

GOOD, BAD = "sk-ant-good-0123456789", "sk-ant-wrong-9876543210"
TOPICS = ["glacier melt", "coral bleaching", "soil erosion", "river delta", "desert bloom", "forest fire"]


def _tiny_store(root: Path, n: int = 10) -> None:
    """source_corpora and mined_negatives artifacts for ``n`` examples, written as the pipeline would."""
    ex_rows, doc_rows, neg_rows = [], [], []
    for i in range(n):
        a, b = TOPICS[i % 6], TOPICS[(i + 2) % 6]
        ex_rows.append((f"t:{i}", "t", str(i), f"effects of climate {i}", None, f"t/{i}a", [], i))
        doc_rows += [
            (f"t/{i}a", "t", "", f"Study {i} measures {a} in rivers.", None, f"h{i}a"),
            (f"t/{i}b", "t", "", f"Report {i} surveys {b} in rivers.", None, f"h{i}b"),
        ]
        neg_rows.append((f"t:{i}", str(i), f"t/{i}a", f"t/{i}b", 3, 0, 0.5, 0.8, 3, 3, "mined", None, None, None, None))
    examples = pl.DataFrame(ex_rows, schema={**EXAMPLE_SCHEMA, "sample_rank": pl.UInt32}, orient="row")
    documents = pl.DataFrame(doc_rows, schema={**DOCUMENT_SCHEMA, "text_hash": pl.Utf8}, orient="row")
    eval_hashes = pl.DataFrame(schema={"kind": pl.Utf8, "hash": pl.Utf8})
    negatives = pl.DataFrame(neg_rows, schema=NEGATIVE_SCHEMA, orient="row")
    write_artifact(
        artifact_dir(root, "source_corpora"), {"examples": examples, "documents": documents, "eval_hashes": eval_hashes}
    )
    write_artifact(artifact_dir(root, "mined_negatives"), negatives)


def _synthesize(root: Path, server, key: str, instance):
    resources = build_resources(
        str(root),
        synthesis=SynthesisSettings(backend="anthropic", api_key=key, base_url=server.base_url, max_concurrency=2),
        achievability=AchievabilitySettings(enabled=False),
    )
    return materialize(
        ASSETS,
        selection=["inverted_instructions"],
        partition_key="8",
        resources=resources,
        instance=instance,
        raise_on_error=False,
    )


def test_a_wrong_api_key_fails_the_run_with_its_cause_caches_nothing_and_keeps_the_good_partition(tmp_path):
    store = ArtifactStore(root=str(tmp_path))
    _tiny_store(Path(store.asset_root()))
    instance = DagsterInstance.ephemeral()
    with MessagesAPIServer(Behaviour(api_key=GOOD)) as server:
        assert _synthesize(tmp_path, server, GOOD, instance).success
        folder = artifact_dir(store.asset_root(), "inverted_instructions", "8")
        good = read_artifact(folder)
        assert (good["status"] == "ok").all() and server.count() == good.height
        # the same partition, another pair order (a new prompt would do the same): every call needs sending
        (Path(store.root) / "_cache" / "synthesis" / "anthropic.sqlite").unlink()
        sent = server.count()
        bad = _synthesize(tmp_path, server, BAD, instance)
        assert not bad.success
        message = next(e for e in bad.all_events if e.is_failure).message + str(
            [e.event_specific_data for e in bad.all_events if e.is_step_failure]
        )
        assert "ANTHROPIC_API_KEY rejected (401" in message and BAD not in message
        assert read_artifact(folder).equals(good)  # the good partition is still there
        cache = ResponseCache(Path(store.root) / "_cache" / "synthesis" / "anthropic.sqlite")
        assert len(cache) == 0  # no 401 was cached under a pair's key
        # with the key fixed, every pair is asked again and the partition succeeds
        assert _synthesize(tmp_path, server, GOOD, instance).success
        assert server.count() - sent == 2 * good.height and len(cache) == good.height


def test_rows_a_previous_version_cached_for_a_rejected_key_are_not_answers(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache._conn.execute(
        "INSERT INTO responses VALUES (?, ?, 0)",
        ("k", json.dumps({"pair_id": "p", "failure_reason": "api_error_401", "status": "failed"})),
    )
    cache._conn.commit()
    assert cache.get("k") is None


def test_the_judge_with_a_wrong_key_fails_with_the_cause(tmp_path):
    from ifir_pipeline.errors import WriterUnavailableError
    from ifir_pipeline.judge import JudgeRequest, LabelSwapJudge

    with MessagesAPIServer(Behaviour(api_key=GOOD)) as server:
        judge = LabelSwapJudge(api_key=BAD, base_url=server.base_url, cache=ResponseCache(tmp_path / "j.sqlite"))
        reqs = [JudgeRequest(f"p{i}", "q", "I", "I'", "pos text", "neg text") for i in range(4)]
        with pytest.raises(WriterUnavailableError, match=r"anthropic-judge: ANTHROPIC_API_KEY rejected \(401"):
            judge.judge(reqs)
    assert len(ResponseCache(tmp_path / "j.sqlite")) == 0


WRITER = textwrap.dedent(
    """
    import sys
    from ifir_pipeline.synthesis.base import InversionResult
    from ifir_pipeline.synthesis.cache import ResponseCache
    cache = ResponseCache(sys.argv[1])
    for i in range(400):
        cache.put(f"{sys.argv[2]}-{i}", InversionResult(pair_id=str(i), status="ok", instruction_og="x" * 200))
    print("done")
    """
)


def test_two_processes_write_one_response_cache(tmp_path):
    db = tmp_path / "shared.sqlite"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]  # no "database is locked"
    assert len(ResponseCache(db)) == 800


PUBLISHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ifir_pipeline.storage import atomic_directory
    for i in range(60):
        with atomic_directory(Path(sys.argv[1])) as staging:
            (staging / "data.txt").write_text(sys.argv[2] * 1000)
            (staging / "meta.txt").write_text(sys.argv[2])
    print("done")
    """
)


def test_two_writers_publishing_one_partition_neither_fail_nor_leak(tmp_path):
    target = tmp_path / "assets" / "pairs" / "8"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(target), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    winner = (target / "meta.txt").read_text()
    assert (target / "data.txt").read_text() == winner * 1000  # one writer's complete folder, never a mix
    leftovers = [p.name for p in target.parent.iterdir() if p.name != "8" and not p.name.endswith(".lock")]
    assert leftovers == []


def test_stale_staging_of_a_killed_writer_is_cleaned_up(tmp_path):
    from ifir_pipeline.storage import atomic_directory

    target = tmp_path / "ck"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ck.{dead.stdout.strip()}.abc.staging"
    stale.mkdir()
    (stale / "half.bin").write_bytes(b"x" * 10)
    with atomic_directory(target) as staging:
        (staging / "ok").write_text("1")
    assert not stale.exists() and (target / "ok").exists()
    assert os.listdir(tmp_path) == ["ck"] or sorted(os.listdir(tmp_path)) == [".ck.lock", "ck"]


def _ifir(*args, env=None, timeout=300):
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ifir_pipeline.cli", *args], capture_output=True, text=True, timeout=timeout, env=full
    )


@pytest.mark.parametrize("value", ["inf", "1e10", "1.5", "nan"])
def test_qrels_scores_that_are_not_grades_exit_2_naming_file_line_and_field(tiny_followir, tmp_path, value):
    import shutil

    bad = tmp_path / "set"
    shutil.copytree(tiny_followir, bad)
    lines = (bad / "qrels" / "test.tsv").read_text().splitlines()
    cells = lines[2].split("\t")
    lines[2] = "\t".join([*cells[:2], value])
    (bad / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    done = _ifir("evaluate", "--model", "packaged", "--followir-dir", str(bad))
    assert done.returncode == 2, done.stderr[-500:]
    assert "test.tsv, line 3, field 'score'" in done.stderr and value in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("value", "named"), [("abc", "whole numbers"), ("250,7", "even"), ("0", ">= 2")])
def test_a_bad_ifir_budgets_is_named(value, named):
    done = _ifir("demo", env={"IFIR_BUDGETS": value}, timeout=120)
    assert done.returncode == 2 and "IFIR_BUDGETS" in done.stderr and named in done.stderr
    assert "Traceback" not in done.stderr


def test_dual_view_refuses_odd_budgets_and_batch_sizes():
    from ifir_pipeline.training import check_batch_size, recipe_rows
    from ifir_pipeline_tests.test_training import _pairs

    with pytest.raises(ValueError, match="even budget"):
        recipe_rows(_pairs(8), "dual_view", budget=7, seed=0)
    with pytest.raises(ValueError, match="even batch_size"):
        check_batch_size("dual_view@offline", 31)
    check_batch_size("instruction_only", 31)


def test_a_truncated_upstream_file_names_the_file_and_the_asset(tmp_path):
    store = ArtifactStore(root=str(tmp_path))
    _tiny_store(Path(store.asset_root()))
    data = artifact_dir(store.asset_root(), "mined_negatives") / "data.parquet"
    data.write_bytes(data.read_bytes()[: len(data.read_bytes()) // 2])
    resources = build_resources(str(tmp_path), synthesis=SynthesisSettings(backend="offline"))
    res = materialize(
        ASSETS,
        selection=["inverted_instructions"],
        partition_key="8",
        resources=resources,
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure).event_specific_data.error.to_string()
    assert str(data) in failure and "asset 'mined_negatives'" in failure and "re-materialize" in failure
