"""The fast maps' wall time: ``python -m compare maps --size fast --jobs 2`` with a cold cache, then warm.

Targets (issue "Step 8", 2 cores): every cell of the maps of C13-C20 (113 claim runs; one computation per
experiment however many statements read it) in under 10 minutes with a cold cache, and seconds with a warm
one. Measured on an idle 2-core machine, master seed 0::

    cold, --jobs 2                 203 s wall, 404 s CPU (user + system, workers included)
    warm, --jobs 2                 1.4 s

(an earlier run on the same machine shared with other jobs, load 3.5-5.6: 750 s wall, 455 s CPU).
Each configuration runs in a fresh subprocess with its own temporary
cache directory.

    python benchmarks/maps_speed.py [--limit 600] [--warm-limit 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str], env: dict) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "compare", "maps", *args], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"maps {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, r.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=float, default=600.0, help="cold-cache target in seconds")
    ap.add_argument("--warm-limit", type=float, default=30.0, help="warm-cache target in seconds")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "MPLBACKEND": "Agg", "CONCURRENCE_CACHE_DIR": cache}
        common = ["--size", "fast", "--seed", "0", "--jobs", "2", "--quiet"]
        cold, cpu, out = timed(common, env)
        print(f"cold: {cold:7.1f} s wall, {cpu:7.1f} s CPU", flush=True)
        warm, _, out2 = timed(common, env)
        print(f"warm: {warm:7.1f} s wall", flush=True)
        if out2 != out:
            print("warm output differs from the cold output")
            return 1
    ok = cold <= args.limit and warm <= args.warm_limit
    print(f"fast maps: cold {cold:.0f} s (target <= {args.limit:.0f}), warm {warm:.1f} s (target <= "
          f"{args.warm_limit:.0f})  {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
