import json
from pathlib import Path

import polars as pl
import pytest

from ifir_pipeline.errors import DataFormatError
from ifir_pipeline.loaders import (
    SourceSpec,
    bundled_path,
    default_eval_specs,
    default_training_specs,
    load_beir,
    load_cranfield,
    load_eval_set,
    load_followir_local,
    load_training_source,
    load_trec_topics,
)
from ifir_pipeline.loaders.scifact import parse_array_of_strings, parse_int_list


def test_bundled_training_sources_load_with_schemas():
    sf, sq, ms = (load_training_source(s) for s in default_training_specs())
    assert ms.examples.height == 1743 and ms.documents.height == 1743
    assert sf.examples.height == 809 and sf.documents.height == 5183
    assert sq.examples.height == 4123 and sq.documents["group"].n_unique() == 48  # two questions per paragraph
    assert [s.weight for s in default_training_specs()] == [1.0, 0.44, 0.06]  # measured swap yields vs SciFact
    assert sf.examples.schema["instruction_negative_ids"] == pl.List(pl.Utf8)
    assert ms.examples["positive_id"].str.starts_with("msmarco/").all()


def test_bundled_eval_sets_match_published_sizes():
    dev, sci = (load_eval_set(s) for s in default_eval_specs())
    assert (dev.corpus.height, dev.queries.height, dev.qrel_diff.height) == (1400, 80, 40)
    assert (sci.queries.height, sci.qrels.height) == (300, 339)  # BEIR SciFact test
    texts = dev.query_texts()
    assert texts["3-og"].startswith("what problems of heat conduction") and "A relevant document" in texts["3-og"]


def test_scifact_array_fields_parse():
    assert parse_array_of_strings("['a b.'\n 'c \"d\".' \"it's\"]") == ["a b.", 'c "d".', "it's"]
    assert parse_int_list("[1 22  333]") == ["1", "22", "333"]
    assert parse_int_list("[]") == []


def test_trec_topics_and_cranfield(tmp_path):
    topics = tmp_path / "t.txt"
    topics.write_text(
        "<top>\n<num> Number: 307\n<title> New Hydro\n<desc>\nIdentify projects.\n"
        "<narr>\nRelevant documents name the project.\n</top>\n"
    )
    t = load_trec_topics(topics)
    assert t.row(0) == ("307", "New Hydro", "Identify projects.", "Relevant documents name the project.")
    cran = tmp_path / "cran"
    cran.mkdir()
    (cran / "cran.all.1400").write_text(
        ".I 1\n.T\nwing study .\n.W\nwing study in a slipstream .\n.I 2\n.T\nflow\n.W\nboundary layer flow .\n"
    )
    (cran / "cran.qry").write_text(".I 001\n.W\nwhat about wings .\n.I 004\n.W\nboundary layers ?\n")
    (cran / "cranqrel").write_text("1 1 2\n2 2 -1\n")
    c = load_cranfield(cran)
    assert c.queries["query_id"].to_list() == ["1", "2"]  # numbered in file order
    assert c.qrels["score"].to_list() == [3, 0]


def test_tevatron_promptriever_layout_keeps_instruction_negatives(tmp_path):
    rec = {
        "query_id": "q1",
        "query": "python sorting",
        "instruction": "Only documents about Python 3 are relevant.",
        "positive_passages": [{"docid": "d1", "title": "", "text": "sorted() in Python 3"}],
        "negative_passages": [{"docid": "d2", "title": "", "text": "Java sorting"}],
        "new_negatives": [{"docid": "d3", "title": "", "text": "sorting in Python 2"}],
    }
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    src = load_training_source(SourceSpec("pr", "tevatron", str(path)))
    row = src.examples.row(0, named=True)
    assert row["instruction"].startswith("Only documents")
    assert row["instruction_negative_ids"] == ["pr/d3"]
    assert set(src.documents["doc_id"]) == {"pr/d1", "pr/d2", "pr/d3"}


def test_plain_table_with_column_mapping(tmp_path):
    pl.DataFrame({"qid": ["a"], "question": ["what is x"], "pid": ["p1"]}).write_parquet(tmp_path / "ex.parquet")
    pl.DataFrame({"id": ["p1"], "body": ["x is a letter"]}).write_csv(tmp_path / "corpus.csv")
    spec = SourceSpec(
        "tab",
        "table",
        str(tmp_path / "ex.parquet"),
        corpus_path=str(tmp_path / "corpus.csv"),
        mapping={"query_id": "qid", "query": "question", "positive_id": "pid"},
        corpus_mapping={"doc_id": "id", "text": "body"},
    )
    src = load_training_source(spec)
    assert src.examples["query"].to_list() == ["what is x"] and src.documents["text"].to_list() == ["x is a letter"]


# ---- bad input: each error names the file, the line or record, and the field -------------------------------


def _beir(
    tmp: Path,
    corpus: bytes,
    queries: bytes = b'{"_id": "q1", "text": "a query"}\n',
    qrels: bytes = b"query-id\tcorpus-id\tscore\nq1\td1\t1\n",
) -> Path:
    (tmp / "qrels").mkdir(parents=True, exist_ok=True)
    (tmp / "corpus.jsonl").write_bytes(corpus)
    (tmp / "queries.jsonl").write_bytes(queries)
    (tmp / "qrels" / "test.tsv").write_bytes(qrels)
    return tmp


GOOD = b'{"_id": "d1", "title": "", "text": "a document"}\n{"_id": "d2", "title": "", "text": "another"}\n'

BAD_CASES = {
    "missing_field": (
        dict(corpus=b'{"_id": "d1", "title": ""}\n'),
        "corpus.jsonl",
        "line 1",
        "'text'",
        "missing required field",
    ),
    "empty_text": (
        dict(corpus=GOOD + b'{"_id": "d3", "text": "   "}\n'),
        "corpus.jsonl",
        "line 3",
        "'text'",
        "empty text",
    ),
    "non_utf8": (
        dict(corpus=GOOD + b'{"_id": "d3", "text": "caf\xe9"}\n'),
        "corpus.jsonl",
        "line 3",
        "'text'",
        "not valid UTF-8",
    ),
    "duplicate_id": (
        dict(corpus=GOOD + b'{"_id": "d1", "text": "different"}\n'),
        "corpus.jsonl",
        "line 3",
        "'_id'",
        "duplicate id 'd1'",
    ),
    "qrels_unknown_doc": (
        dict(corpus=GOOD, qrels=b"q1\td9\t1\n"),
        "test.tsv",
        "line 1",
        "'corpus-id'",
        "unknown document 'd9'",
    ),
    "qrels_unknown_query": (
        dict(corpus=GOOD, qrels=b"q1\td1\t1\nq7\td1\t1\n"),
        "test.tsv",
        "line 2",
        "'query-id'",
        "unknown query 'q7'",
    ),
    "truncated_line": (
        dict(corpus=GOOD + b'{"_id": "d3", "text": "cut of'),
        "corpus.jsonl",
        "line 3",
        None,
        "truncated line?",
    ),
    "wrong_type": (
        dict(corpus=GOOD + b'{"_id": "d3", "text": ["a", "list"]}\n'),
        "corpus.jsonl",
        "line 3",
        "'text'",
        "expected a string, got list",
    ),
    "empty_file": (dict(corpus=b""), "corpus.jsonl", None, None, "file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_line_and_field(tmp_path, case):
    files, fname, line, field, problem = BAD_CASES[case]
    folder = _beir(tmp_path / case, **files)
    with pytest.raises(DataFormatError) as info:
        load_beir(folder)
    msg = str(info.value)
    print(f"{case}: {msg}")
    assert fname in msg and problem in msg
    if line:
        assert line in msg
    if field:
        assert f"field {field}" in msg


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(DataFormatError, match="unknown training format 'xml'"):
        load_training_source(SourceSpec("x", "xml", str(tmp_path)))
    with pytest.raises(DataFormatError, match=r"unknown table format '\.xlsx'"):
        (tmp_path / "a.xlsx").write_text("x")
        from ifir_pipeline.loaders.tabular import read_table

        read_table(tmp_path / "a.xlsx", {}, ["query"])


def test_followir_folder_missing_config_and_bad_reference(tiny_followir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_followir, broken)
    (broken / "qrel_diff.jsonl").unlink()
    with pytest.raises(DataFormatError, match="qrel_diff.jsonl.*missing config"):
        load_followir_local(broken)
    shutil.copytree(tiny_followir, broken, dirs_exist_ok=True)
    with (broken / "top_ranked.jsonl").open("a") as f:
        f.write(json.dumps({"query-id": "3-og", "corpus-ids": ["no-such-doc"]}) + "\n")
    with pytest.raises(DataFormatError, match=r"top_ranked.jsonl, line \d+, field 'corpus-ids': unknown documents"):
        load_followir_local(broken)


def test_bundled_data_ships_inside_the_package():
    assert (bundled_path("cranfield-if-dev") / "corpus.jsonl").exists()
    notice = (bundled_path().parent / "NOTICE.md").read_text()
    assert "CC BY 4.0" in notice and "CC BY-SA 4.0" in notice and "ShareAlike" in notice
    assert (bundled_path("squad") / "README.md").exists() and (bundled_path("recordings") / "README.md").exists()
