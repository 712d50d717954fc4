"""Command line: ``python -m sslfer <command>`` (``inspect``, ``synth-check``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _inspect(args: argparse.Namespace) -> int:
    from .parquet_info import describe

    for path in args.paths:
        print(describe(path))
    return 0


def _synth_check(args: argparse.Namespace) -> int:
    from .synth.realism import check_corpus, format_reports

    reports = check_corpus(args.root, n=args.n, seed=args.seed)
    print(json.dumps([r.as_dict() for r in reports], indent=1) if args.json else format_reports(reports))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sslfer`` command."""
    parser = argparse.ArgumentParser(prog="sslfer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print a Parquet artifact's schema, provenance and status counts")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_inspect)
    p = sub.add_parser("synth-check", help="dlib detection rate and landmark error on the synthetic corpus")
    p.add_argument("--root", default="resources/synth")
    p.add_argument("-n", type=int, default=200, help="images sampled per dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_synth_check)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
