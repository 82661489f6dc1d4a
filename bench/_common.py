"""Shared bench helpers: offline environment, a subprocess runner that reports peak RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HOME", str(Path(tempfile.gettempdir()) / "ifir-bench-hf"))


def run_worker(script: str, *args: str) -> dict:
    """Run ``script --worker ...`` in a fresh interpreter; it prints one JSON line, peak RSS included."""
    out = subprocess.run([sys.executable, script, "--worker", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
