"""A persistent response cache keyed by a content hash: no call is ever paid for twice.

SQLite, one row per key, committed as each response arrives, so a run that dies midway keeps every answer
it already received; the rerun makes only the missing calls. Batch ids are kept too, so a Message Batch
submitted before a crash is collected, not submitted again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path

from ifir_pipeline.hashing import stable_hash
from ifir_pipeline.synthesis.base import InversionRequest, InversionResult
from ifir_pipeline.synthesis.prompt import POLARITY_REVERSAL_PROMPT_VERSION

# failure reasons that say nothing about the pair: never cached, and a run that mostly fails for them fails
SERVICE_FAILURES = (
    "transport_error",
    "cost_cap_reached",
    "batch_expired",
    "batch_canceled",
    "batch_missing",
    "batch_errored",
)


def is_service_failure(reason: str | None) -> bool:
    return bool(reason) and (reason in SERVICE_FAILURES or reason.startswith("api_error_"))


def synthesis_cache_key(
    model: str, req: InversionRequest, prompt_version: str = POLARITY_REVERSAL_PROMPT_VERSION
) -> str:
    return stable_hash([prompt_version, model, req.query, req.instruction, req.positive, req.negative])


class ResponseCache:
    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # WAL and a busy timeout: several processes (two runs, a backfill) share one cache file
        self._conn = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False, timeout=60.0)
        self._conn.execute("PRAGMA busy_timeout = 60000")
        if self.path:
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL)"
        )
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS batches "
            "(batch_id TEXT PRIMARY KEY, keys TEXT NOT NULL, status TEXT, created REAL)"
        )
        self._conn.commit()

    def get(self, key: str, cls: type = InversionResult):
        with self._lock:
            row = self._conn.execute("SELECT result FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        if is_service_failure(data.get("failure_reason")):  # written by an older version: never an answer
            return None
        return cls(**data)

    def put(self, key: str, result) -> None:
        # Only answers are cached: real ones and content-level failures (refusal, malformed JSON from the
        # model). Service failures (a rejected key, a missing model, transport) are retried on the next run.
        if is_service_failure(result.failure_reason):
            return
        data = asdict(result)
        data["cache_hit"] = False
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, result, created) VALUES (?, ?, ?)",
                (key, json.dumps(data), time.time()),
            )
            self._conn.commit()

    def open_batches(self) -> list[tuple[str, list[str]]]:
        with self._lock:
            rows = self._conn.execute("SELECT batch_id, keys FROM batches WHERE status != 'collected'").fetchall()
        return [(b, json.loads(k)) for b, k in rows]

    def record_batch(self, batch_id: str, keys: list[str], status: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO batches (batch_id, keys, status, created) VALUES (?, ?, ?, ?)",
                (batch_id, json.dumps(keys), status, time.time()),
            )
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
