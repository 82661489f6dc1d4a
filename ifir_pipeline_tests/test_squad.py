"""SQuAD as a training source: v1.1 and v2.0, .json and .json.gz, articles as groups, same-article negatives."""

import gzip
import json

import numpy as np
import polars as pl
import pytest

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders import SourceSpec, bundled_path, load_squad, load_training_source
from ifir_pipeline.mining import MiningConfig
from ifir_pipeline.mining_pool import mine_pool


def test_bundled_squad_dev_v11_and_v20():
    ex, docs, stats = load_squad(bundled_path("squad", "dev-v1.1.json.gz"))
    assert (stats.articles, stats.paragraphs, stats.questions, stats.unanswerable_skipped) == (48, 2067, 10570, 0)
    assert docs["group"].n_unique() == 48 and ex["positive_id"].is_in(docs["doc_id"].implode()).all()
    _, _, v2 = load_squad(bundled_path("squad", "dev-v2.0.json.gz"))
    assert v2.unanswerable_skipped == 5945 and v2.questions == 5928  # no positive paragraph: skipped, counted
    _, _, capped = load_squad(bundled_path("squad", "dev-v1.1.json.gz"), max_questions_per_paragraph=1)
    assert capped.questions == 2067 and capped.capped_skipped == 10570 - 2067


def _squad(path, articles):
    data = {"version": "1.1", "data": articles}
    raw = json.dumps(data).encode()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def test_training_source_has_article_groups_and_plain_json(tmp_path):
    p = _squad(
        tmp_path / "tiny.json",
        [
            {
                "title": "Oil_crisis",
                "paragraphs": [
                    {"context": "The oil crisis began in October 1973.", "qas": [{"id": "q1", "question": "When?"}]},
                    {"context": "Prices rose to twelve dollars.", "qas": [{"id": "q2", "question": "What price?"}]},
                ],
            }
        ],
    )
    src = load_training_source(SourceSpec("sq", "squad", str(p)))
    assert src.examples["positive_id"].to_list() == ["sq/Oil_crisis-p0", "sq/Oil_crisis-p1"]
    assert src.documents["group"].to_list() == ["Oil_crisis", "Oil_crisis"]
    assert src.documents["title"].to_list() == ["Oil crisis", "Oil crisis"]


def test_bad_squad_files_name_the_record_and_field(tmp_path):
    p = _squad(
        tmp_path / "bad.json.gz",
        [{"title": "A", "paragraphs": [{"context": "c", "qas": [{"id": "q1", "question": "ok?"}, {"id": "q2"}]}]}],
    )
    with pytest.raises(DataFormatError, match=r"bad\.json\.gz, data\[0\]\.paragraphs\[0\]\.qas\[1\], field 'question'"):
        load_squad(p)
    trunc = tmp_path / "trunc.json.gz"
    trunc.write_bytes(bundled_path("squad", "dev-v1.1.json.gz").read_bytes()[:5000])
    with pytest.raises(DataFormatError, match="trunc.json.gz: truncated or corrupt gzip"):
        load_squad(trunc)
    with pytest.raises(DataFormatError, match="unknown squad options"):
        load_training_source(SourceSpec("sq", "squad", str(p), options={"max_questions": 1}))


class _HashEncoder:
    """A deterministic stand-in encoder (bag of hashed words), so this test needs no model."""

    def encode(self, texts, **kw):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, hash(w) % 64] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class _NoCache:
    root = None
    hits = misses = 0

    def encode(self, model, texts, hashes, progress=False):
        return model.encode(texts)


def test_grouped_sources_take_negatives_from_the_positives_article():
    rows, docs = [], []
    for a in ("Alpha", "Beta"):
        for p in range(6):
            docs.append(
                {
                    "doc_id": f"s/{a}-p{p}",
                    "source": "s",
                    "title": a,
                    "text": f"{a} paragraph {p} about rivers and {a}",
                    "group": a,
                }
            )
            rows.append(
                {
                    "example_id": f"s:{a}{p}",
                    "source": "s",
                    "query_id": f"{a}{p}",
                    "query": f"rivers {a} {p}",
                    "instruction": None,
                    "positive_id": f"s/{a}-p{p}",
                    "instruction_negative_ids": [],
                }
            )
    examples = pl.DataFrame(
        rows, schema_overrides={"instruction": pl.Utf8, "instruction_negative_ids": pl.List(pl.Utf8)}
    )
    documents = pl.DataFrame(docs)
    cfg = MiningConfig(k=2, rank_min=2, rank_max=10, max_score_ratio=5.0)
    out, stats = mine_pool(examples, documents, _HashEncoder(), _NoCache(), cfg, log=lambda m: None)
    joined = out.with_columns(
        pl.col("positive_id").str.extract(r"s/(\w+)-").alias("pg"),
        pl.col("negative_id").str.extract(r"s/(\w+)-").alias("ng"),
    )
    assert joined.height > 0 and (joined["pg"] == joined["ng"]).all()
