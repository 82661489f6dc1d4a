"""A local HTTP server that speaks enough of the Anthropic Messages API for the real SDK to round-trip.

It serves ``POST /v1/messages``, ``POST /v1/messages/batches``, ``GET /v1/messages/batches/{id}`` and
``GET /v1/messages/batches/{id}/results``, with scripted faults (429/529/5xx with ``retry-after-ms``),
injected latency, malformed bodies and refusals. Its "model" answers the polarity-reversal task from the
two delimited documents, deterministically, and behaves as a hijacked model would (answering "HACKED")
when a document manages to close its delimiter early: so a test can tell whether quoting held.

It binds to 127.0.0.1 on a free port and records every request it saw (path, headers, body).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_DOC = re.compile(r'<document id="(DOC_[AB])">\n(.*?)\n</document>', re.S)


@dataclass
class Behaviour:
    latency_s: float = 0.0
    faults: deque = field(default_factory=deque)  # status codes to answer, in order, before normal answers
    malformed_every: int = 0  # every n-th successful answer is not JSON
    refuse_containing: str | None = None  # answer stop_reason "refusal" when the prompt holds this text
    not_achievable_containing: str | None = None
    batch_polls_until_ended: int = 1
    api_key: str | None = None  # when set, any other x-api-key is answered 401 authentication_error


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", text)]


class MessagesAPIServer:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.batches: dict[str, dict[str, Any]] = {}
        self._seen_system: set[str] = set()
        self._answered = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json" if raw is None else "application/x-jsonl")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed: nothing to answer
                    pass

            def _record(self, body: Any) -> None:
                with server.lock:
                    server.requests.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body,
                        }
                    )

            def _authorized(self) -> bool:
                want = server.behaviour.api_key
                sent = self.headers.get("x-api-key") or self.headers.get("authorization", "").removeprefix("Bearer ")
                if want is None or sent == want:
                    return True
                self._send(
                    401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}
                )
                return False

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                if not self._authorized():
                    return None
                if self.path.rstrip("/").endswith("/v1/messages"):
                    return self._messages(body)
                if self.path.rstrip("/").endswith("/v1/messages/batches"):
                    return self._create_batch(body)
                self._send(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_GET(self):
                self._record(None)
                if not self._authorized():
                    return None
                m = re.match(r".*/v1/messages/batches/([^/]+)(/results)?$", self.path)
                if not m or m.group(1) not in server.batches:
                    return self._send(
                        404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
                    )
                batch = server.batches[m.group(1)]
                if m.group(2):
                    lines = "".join(json.dumps(r) + "\n" for r in batch["results"])
                    return self._send(200, None, raw=lines.encode())
                batch["polls"] += 1
                self._send(200, server._batch_json(batch, self.headers.get("host")))

            def _messages(self, body):
                b = server.behaviour
                with server.lock:
                    fault = b.faults.popleft() if b.faults else None
                if fault is not None:
                    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(fault, "api_error")
                    return self._send(
                        fault,
                        {"type": "error", "error": {"type": kind, "message": f"injected {fault}"}},
                        {"retry-after-ms": "20"},
                    )
                if b.latency_s:
                    time.sleep(b.latency_s)
                self._send(200, server.answer(body))

            def _create_batch(self, body):
                batch_id = f"msgbatch_{uuid.uuid4().hex[:16]}"
                results = []
                for req in body["requests"]:
                    results.append(
                        {
                            "custom_id": req["custom_id"],
                            "result": {"type": "succeeded", "message": server.answer(req["params"])},
                        }
                    )
                batch = {"id": batch_id, "results": results, "polls": 0, "created": time.time()}
                server.batches[batch_id] = batch
                self._send(200, server._batch_json(batch, self.headers.get("host")))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- the "model" --------------------------------------------------------------------------------------
    def answer(self, params: dict[str, Any]) -> dict[str, Any]:
        b = self.behaviour
        system = "".join(s.get("text", "") for s in params.get("system", []) if isinstance(s, dict))
        user = params["messages"][0]["content"]
        user = user if isinstance(user, str) else "".join(c.get("text", "") for c in user)
        cached = any(isinstance(s, dict) and s.get("cache_control") for s in params.get("system", []))
        with self.lock:
            self._answered += 1
            n = self._answered
            hit = cached and system in self._seen_system
            self._seen_system.add(system)
        usage = {
            "input_tokens": len(user) // 4,
            "output_tokens": 60,
            "cache_read_input_tokens": len(system) // 4 if hit else 0,
            "cache_creation_input_tokens": len(system) // 4 if cached and not hit else 0,
        }
        msg = {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": params["model"],
            "stop_sequence": None,
            "usage": usage,
        }
        if b.refuse_containing and b.refuse_containing in user:
            return {**msg, "content": [], "stop_reason": "refusal"}
        if b.malformed_every and n % b.malformed_every == 0:
            return {
                **msg,
                "content": [{"type": "text", "text": "Sure! Here is the instruction: {oops"}],
                "stop_reason": "end_turn",
            }
        if "You judge search relevance" in system:
            return {
                **msg,
                "content": [{"type": "text", "text": json.dumps(self._judge(user))}],
                "stop_reason": "end_turn",
            }
        docs = dict(_DOC.findall(user))
        if user.count("</document>") != 2 or set(docs) != {"DOC_A", "DOC_B"}:
            return {**msg, "content": [{"type": "text", "text": "HACKED"}], "stop_reason": "end_turn"}
        wa = [w for w in _words(docs["DOC_A"]) if w.lower() not in docs["DOC_B"].lower()] or ["its own findings"]
        wb = [w for w in _words(docs["DOC_B"]) if w.lower() not in docs["DOC_A"].lower()] or ["another aspect"]
        achievable = not (b.not_achievable_containing and b.not_achievable_containing in user)
        out = {
            "original_instruction": f"Relevant documents must discuss {wa[0].lower()}.",
            "complementary_instruction": (
                f"Relevant documents must discuss {wb[0].lower()}; documents about {wa[0].lower()} are not relevant."
            ),
            "style": "both",
            "rationale": "DOC_B is distinguished by its own terms",
            "swap_achievable": achievable,
        }
        return {**msg, "content": [{"type": "text", "text": json.dumps(out)}], "stop_reason": "end_turn"}

    @staticmethod
    def _judge(user: str) -> dict[str, Any]:
        """A stand-in judge: the document that satisfies each instruction better (negation-aware overlap)."""
        from ifir_pipeline.verification import instruction_score

        payload = json.loads(user.split("\n", 2)[1])
        docs = dict(re.findall(r'<document id="(DOC_[12])">\n(.*?)\n</document>', user, re.S))

        def pick(inst: str) -> str:
            a, b = (instruction_score(inst, docs[d], payload["query"]) for d in ("DOC_1", "DOC_2"))
            return "DOC_1" if a > b else "DOC_2" if b > a else "neither"

        return {
            "relevant_under_original": pick(payload["ORIGINAL"]),
            "relevant_under_complementary": pick(payload["COMPLEMENTARY"]),
            "rationale": "overlap",
        }

    def _batch_json(self, batch: dict[str, Any], host: str | None) -> dict[str, Any]:
        ended = batch["polls"] >= self.behaviour.batch_polls_until_ended
        n = len(batch["results"])
        return {
            "id": batch["id"],
            "type": "message_batch",
            "processing_status": "ended" if ended else "in_progress",
            "request_counts": {
                "processing": 0 if ended else n,
                "succeeded": n if ended else 0,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-11-26T00:00:00Z",
            "expires_at": "2026-11-27T00:00:00Z",
            "ended_at": "2026-11-26T00:01:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch['id']}/results" if ended else None,
        }

    # -- lifecycle -------------------------------------------------------------------------------------------
    def count(self, path_suffix: str = "/v1/messages", method: str = "POST") -> int:
        with self.lock:
            return sum(
                1 for r in self.requests if r["method"] == method and r["path"].rstrip("/").endswith(path_suffix)
            )

    def __enter__(self) -> MessagesAPIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    """``python -m ifir_pipeline.testing.messages_api_server [--latency S] [--api-key K]``: serve until stdin
    closes.

    Prints the base URL on the first line, so a benchmark can run the server in its own process (a real API
    server does not share the client's interpreter lock).
    """
    import argparse
    import sys

    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=float, default=0.0)
    p.add_argument("--api-key", default=None, help="answer any other key with 401 authentication_error")
    args = p.parse_args()
    with MessagesAPIServer(Behaviour(latency_s=args.latency, api_key=args.api_key)) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
