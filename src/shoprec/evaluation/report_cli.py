"""`shoprec report --store URL --out report.html [--kind KIND ...] [--import FILE ...]`."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help="store URL (default: settings.store_url)")
    parser.add_argument("--out", default="report.html", help="HTML file to write")
    parser.add_argument("--kind", action="append", default=None, help="only runs of this kind (repeatable)")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="FILE",
                        help="first import benchmark JSON records from FILE into the registry (repeatable)")
    parser.add_argument("--title", default="shoprec experiment report")


def run(args: argparse.Namespace) -> int:
    from shoprec.data.store import open_store
    from shoprec.evaluation.registry import list_runs, record_from_json
    from shoprec.evaluation.report import write_report

    with open_store(args.store) as store:
        for path in args.imports:
            ids = record_from_json(store, path)
            print(f"imported {len(ids)} runs from {path}")
        out = write_report(store, args.out, args.kind, args.title)
        n_runs = len([r for r in list_runs(store) if not args.kind or r.get("kind") in args.kind])
    print(f"wrote {out} ({n_runs} runs)")
    return 0
