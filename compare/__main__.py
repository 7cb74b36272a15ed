"""Command line: ``python -m compare {list,check,report}``.

- ``list``: one line per claim (id, paper reference, kind, statement).
- ``check [IDS...] [--size fast|paper] [--seed S] [--jobs J] [--scheduler ADDR] [--json PATH]``:
  runs claims, prints a table, exits 0 iff every selected claim holds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Sequence

from compare.registry import SIZES


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def print_table(records: Sequence[dict], file=sys.stdout) -> None:
    cols = ("id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "verdict", "seconds")
    rows = [[_fmt(r.get(c)) for c in cols] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)] if rows else [len(c) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=file)
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)


def write_json_atomic(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` via a temporary file and ``os.replace``."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _select(ids: Sequence[str]) -> list[str]:
    from compare.claims import CLAIMS

    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise SystemExit(
            f"compare: unknown claim id(s) {', '.join(unknown)}; valid ids: {', '.join(CLAIMS)}"
        )
    return list(ids) or list(CLAIMS)


def cmd_list(args) -> int:
    from compare.claims import CLAIMS

    for c in CLAIMS.values():
        tag = " [R]" if c.reconstructed else ""
        print(f"{c.id:6s} {c.paper_ref + ' / ' + c.theory_ref:34s} {c.kind:12s} {c.statement}{tag}")
    return 0


def cmd_check(args) -> int:
    from compare.claims import check

    ids = _select(args.ids)
    records = []
    for cid in ids:
        rec = check(cid, size=args.size, seed=args.seed)
        records.append(rec)
        if not args.quiet:
            print(f"{cid}: {rec['verdict']} ({rec['seconds']:.1f} s)", file=sys.stderr)
    print_table(records)
    if args.json:
        write_json_atomic(args.json, records)
    return 0 if all(r["passed"] for r in records) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m compare", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="one line per claim")
    c = sub.add_parser("check", help="run claims and print a table; exit 0 iff all hold")
    c.add_argument("ids", nargs="*", metavar="ID", help="claim ids (default: all)")
    c.add_argument("--size", choices=SIZES, default="fast")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--jobs", type=int, default=1)
    c.add_argument("--scheduler", default=None, metavar="ADDR")
    c.add_argument("--json", default=None, metavar="PATH")
    c.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return {"list": cmd_list, "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
