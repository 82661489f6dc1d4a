"""Synthesis throughput: the offline writer's pairs/s on bundled data, and the anthropic backend (real SDK)
against a local Messages API server with 200 ms latency at concurrency 16, as a ratio of the ideal
(concurrency / latency requests per second).

Usage: python bench/synthesis.py [--pairs 2000] [--requests 640]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def bundled_requests(n: int):
    from ifir_pipeline.loaders import default_training_specs, load_training_source
    from ifir_pipeline.synthesis.base import InversionRequest

    reqs, texts_all = [], []
    for spec in default_training_specs():
        src = load_training_source(spec)
        texts = dict(
            zip(
                src.documents["doc_id"],
                (f"{t} {x}".strip() for t, x in zip(src.documents["title"], src.documents["text"], strict=True)),
                strict=True,
            )
        )
        ids = list(texts)
        rng = random.Random(0)
        for row in src.examples.iter_rows(named=True):
            neg = ids[rng.randrange(len(ids))]
            reqs.append(
                InversionRequest(
                    row["example_id"], row["query"], row["instruction"], texts[row["positive_id"]], texts[neg]
                )
            )
        texts_all.extend(texts.values())
    random.Random(1).shuffle(reqs)
    return reqs[:n], texts_all


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", type=int, default=2000)
    p.add_argument("--requests", type=int, default=640)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()

    from ifir_pipeline.synthesis.anthropic_backend import AnthropicBackend
    from ifir_pipeline.synthesis.offline import OfflineBackend
    from ifir_pipeline.text_aspects import PhraseStats

    reqs, texts = bundled_requests(args.pairs)
    t0 = time.perf_counter()
    stats = PhraseStats.fit(texts)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = OfflineBackend(stats).invert(reqs)
    offline_s = time.perf_counter() - t0
    ok = sum(r.status == "ok" for r in results)
    print(
        f"offline: {len(reqs)} pairs in {offline_s:.2f}s ({len(reqs) / offline_s:.0f} pairs/s, {ok} ok) + {fit_s:.2f}s phrase statistics"
    )

    # The server runs in its own process, as a remote API would: it must not share the client's GIL.
    server = subprocess.Popen(
        [sys.executable, "-m", "ifir_pipeline.testing.messages_api_server", "--latency", str(args.latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        backend = AnthropicBackend(api_key="bench", base_url=base_url, max_concurrency=args.concurrency)
        backend.invert(reqs[: args.concurrency])  # untimed warm-up: the SDK's lazy imports and first connections
        t0 = time.perf_counter()
        out = backend.invert(reqs[: args.requests])
        api_s = time.perf_counter() - t0
        assert all(r.status == "ok" for r in out), [r.failure_reason for r in out if r.status != "ok"][:3]
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    achieved = args.requests / api_s
    ideal = args.concurrency / args.latency
    print(
        f"anthropic (local server, {args.latency * 1000:.0f} ms, concurrency {args.concurrency}): {achieved:.1f} req/s, ideal {ideal:.0f} req/s"
    )
    print(
        json.dumps(
            {
                "offline_pairs_per_s": round(len(reqs) / offline_s, 1),
                "offline_ok_share": round(ok / len(reqs), 3),
                "anthropic_req_per_s": round(achieved, 1),
                "ideal_req_per_s": ideal,
                "ratio_to_ideal": round(achieved / ideal, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
