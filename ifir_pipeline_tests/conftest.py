"""Test environment: nothing reads or writes the home folder, nothing reaches the hub.

Partitions are built from IFIR_BUDGETS when ifir_pipeline.partitions is imported, so it is set here,
before any test imports the package: tests use tiny budgets.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

_TMP = Path(tempfile.mkdtemp(prefix="ifir-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HOME"] = str(_TMP / "hf")
os.environ["MTEB_CACHE"] = str(_TMP / "mteb")
os.environ["DAGSTER_HOME"] = str(_TMP / "dagster_home")
os.environ["IFIR_HOME"] = str(_TMP / "artifacts")
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["IFIR_BUDGETS"] = "8,16"
os.environ.pop("ANTHROPIC_API_KEY", None)
(_TMP / "dagster_home").mkdir(parents=True, exist_ok=True)
(_TMP / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

import polars as pl  # noqa: E402
import pytest  # noqa: E402

from ifir_pipeline.loaders import bundled_path  # noqa: E402


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout_s: float) -> bool:
    """Poll ``url`` until it answers (True) or ``timeout_s`` passes (False)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except OSError:
            time.sleep(1)
    return False


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="session")
def tiny_followir(tmp_path_factory) -> Path:
    """A FollowIR-format folder cut from the bundled cranfield-if-dev: 4 queries, short candidate lists."""
    src = bundled_path("cranfield-if-dev")
    out = tmp_path_factory.mktemp("tiny_followir")
    diff = [json.loads(x) for x in (src / "qrel_diff.jsonl").read_text().splitlines()][:4]
    base_ids = [d["query-id"] for d in diff]
    qids = {f"{b}-{s}" for b in base_ids for s in ("og", "changed")}
    qrels = pl.read_csv(
        src / "qrels" / "test.tsv", separator="\t", schema_overrides={"query-id": pl.Utf8, "corpus-id": pl.Utf8}
    )
    qrels = qrels.filter(pl.col("query-id").is_in(list(qids)))
    top = [json.loads(x) for x in (src / "top_ranked.jsonl").read_text().splitlines()]
    keep_docs: set[str] = set(qrels["corpus-id"])
    for d in diff:
        keep_docs.update(d["corpus-ids"])
    new_top = []
    for t in top:
        if t["query-id"] in qids:
            ids = [x for x in t["corpus-ids"] if x in keep_docs] + [x for x in t["corpus-ids"] if x not in keep_docs][
                :8
            ]
            keep_docs.update(ids)
            new_top.append({"query-id": t["query-id"], "corpus-ids": ids})
    corpus = [json.loads(x) for x in (src / "corpus.jsonl").read_text().splitlines()]
    _write_jsonl(out / "corpus.jsonl", [c for c in corpus if c["_id"] in keep_docs])
    _write_jsonl(
        out / "queries.jsonl",
        [json.loads(x) for x in (src / "queries.jsonl").read_text().splitlines() if json.loads(x)["_id"] in qids],
    )
    _write_jsonl(
        out / "instruction.jsonl",
        [
            json.loads(x)
            for x in (src / "instruction.jsonl").read_text().splitlines()
            if json.loads(x)["query-id"] in qids
        ],
    )
    _write_jsonl(out / "top_ranked.jsonl", new_top)
    _write_jsonl(out / "qrel_diff.jsonl", diff)
    (out / "qrels").mkdir()
    qrels.write_csv(out / "qrels" / "test.tsv", separator="\t")
    return out


def _scifact_beir_subset(
    out: Path, claims_file: str, query_slice: tuple[int, int], extra_docs: tuple[int, int]
) -> Path:
    """Write a BEIR folder: a slice of SciFact claims, their cited abstracts and a slice of other abstracts."""
    from ifir_pipeline.loaders import load_scifact_claims, load_scifact_corpus

    corpus = load_scifact_corpus(bundled_path("scifact", "corpus_train.csv"))
    claims = load_scifact_claims(bundled_path("scifact", claims_file))
    qids = claims.queries["query_id"].slice(*query_slice).to_list()
    qrels = claims.qrels.filter(pl.col("query_id").is_in(qids))
    docs = set(qrels["doc_id"]) | set(corpus["doc_id"].slice(*extra_docs))
    sub = corpus.filter(pl.col("doc_id").is_in(list(docs)))
    _write_jsonl(out / "corpus.jsonl", [{"_id": d, "title": t, "text": x} for d, t, x in sub.iter_rows()])
    queries = claims.queries.filter(pl.col("query_id").is_in(qids))
    _write_jsonl(out / "queries.jsonl", [{"_id": q, "text": t} for q, t in queries.iter_rows()])
    (out / "qrels").mkdir()
    qrels.rename({"query_id": "query-id", "doc_id": "corpus-id"}).write_csv(out / "qrels" / "test.tsv", separator="\t")
    return out


@pytest.fixture(scope="session")
def tiny_beir_eval(tmp_path_factory) -> Path:
    """A BEIR folder cut from SciFact test: 12 claims, their cited abstracts plus 30 others."""
    return _scifact_beir_subset(tmp_path_factory.mktemp("tiny_beir"), "claims_validation.csv", (0, 12), (0, 30))


@pytest.fixture(scope="session")
def tiny_train_beir(tmp_path_factory) -> Path:
    """A BEIR-format training source cut from SciFact train: 40 claims and their abstracts plus 120 others."""
    return _scifact_beir_subset(tmp_path_factory.mktemp("tiny_train"), "claims_train.csv", (100, 40), (1000, 120))


@pytest.fixture(scope="session")
def encoder():
    from ifir_pipeline.encoders import load_encoder

    return load_encoder("packaged", max_seq_length=128)


BUCKET = "ifir-test"


@pytest.fixture(scope="module")
def moto_endpoint():
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    mp.setenv("AWS_ENDPOINT_URL", endpoint)
    from ifir_pipeline.s3_storage import s3_client

    s3_client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    mp.undo()
    proc.terminate()
    proc.wait(timeout=10)
