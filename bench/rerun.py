"""Re-running the main job when nothing changed: ``ifir demo`` twice in one fresh Dagster home.

The first run is the peer (every step runs); the second must reuse every up-to-date step (Dagster code and
data versions) and print the same table. Target: the second run at most 30 s on the 2-core reference machine.
Usage: python bench/rerun.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401


def demo(home: Path) -> tuple[float, str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster_home"), "IFIR_HOME": str(home / "artifacts")}
    env.pop("IFIR_BUDGETS", None)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "ifir_pipeline.cli", "demo"], env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"ifir demo failed:\n{out.stderr[-3000:]}")
    table = "\n".join(line for line in out.stdout.splitlines() if line.startswith("|"))
    summary = next((line for line in out.stdout.splitlines() if "steps ran" in line), "")
    return seconds, table, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", default=None, help="a folder to keep the Dagster home and artifacts in")
    args = parser.parse_args()
    home = Path(args.keep or tempfile.mkdtemp(prefix="ifir-rerun-"))
    first_s, first_table, first_summary = demo(home)
    print(f"first run:  {first_s:.1f} s  ({first_summary})", flush=True)
    second_s, second_table, second_summary = demo(home)
    print(f"second run: {second_s:.1f} s  ({second_summary})", flush=True)
    print(second_table)
    ran = int(re.search(r"(\d+) steps ran", second_summary).group(1)) if second_summary else -1
    print(
        json.dumps(
            {
                "first_s": round(first_s, 1),
                "second_s": round(second_s, 1),
                "speedup": round(first_s / max(second_s, 1e-9), 1),
                "second_run_steps_ran": ran,
                "same_table": first_table == second_table and bool(first_table),
                "target_second_s": 30,
            }
        )
    )


if __name__ == "__main__":
    main()
