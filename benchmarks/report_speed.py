"""The report's wall time on this machine: ``--jobs 2`` against ``--jobs 1`` (no cache), in the same run.

Targets (issue 11, measured on 2 cores): the fast report at least 1.7x faster with two workers than with
one; with ``--paper`` also the paper-size report with two workers within 6 minutes. Each configuration
runs in a fresh subprocess with ``--no-cache`` (nothing reused); the fast pair is interleaved
``--repeat`` times and the medians compared.

    python benchmarks/report_speed.py [--repeat 2] [--paper]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(size: str, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "compare", "report", "--size", size, "--jobs", str(jobs),
                            "--no-cache", "--quiet", "--out", out], cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"report --size {size} --jobs {jobs} failed ({r.returncode}): {r.stderr[-2000:]}")
    print(f"  report --size {size} --jobs {jobs}: {took:7.1f} s   {r.stdout.strip().splitlines()[-1][:110]}",
          flush=True)
    return took


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--paper", action="store_true", help="also time the paper-size report with --jobs 2")
    ap.add_argument("--speedup", type=float, default=1.7)
    ap.add_argument("--paper-limit", type=float, default=360.0)
    args = ap.parse_args(argv)
    one, two = [], []
    for _ in range(args.repeat):
        one.append(wall("fast", 1))
        two.append(wall("fast", 2))
    s = statistics.median(one) / statistics.median(two)
    ok = s >= args.speedup
    print(f"fast report: --jobs 1 {statistics.median(one):.1f} s, --jobs 2 {statistics.median(two):.1f} s, "
          f"speed-up {s:.2f}x (target >= {args.speedup})  {'ok' if ok else 'MISSED'}")
    if args.paper:
        t = wall("paper", 2)
        ok_p = t <= args.paper_limit
        print(f"paper report --jobs 2: {t:.0f} s (target <= {args.paper_limit:.0f} s)  {'ok' if ok_p else 'MISSED'}")
        ok = ok and ok_p
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
