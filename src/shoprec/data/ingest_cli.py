"""`shoprec ingest catalog|events|users FILE`: load a file into the store, then print a summary line and JSON."""

from __future__ import annotations

import argparse
import json
import sys

FORMAT_CHOICES = ["auto", "csv", "jsonl", "parquet", "s3rec", "homedepot"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=["catalog", "events", "users"], help="what the file holds")
    parser.add_argument("file", help="input file (.csv, .jsonl, .parquet, S3-Rec .txt, Home Depot products.csv; .gz ok)")
    parser.add_argument("--format", default="auto", choices=FORMAT_CHOICES,
                        help="file format (default: from the file name and CSV header)")
    parser.add_argument("--store", help="store URL (default: settings.store_url)")
    parser.add_argument("--batch-size", type=int, default=20_000, help="rows per store transaction (default 20000)")
    parser.add_argument("--rejects", help="where to write rejected rows (default: <file>.rejects.jsonl)")
    parser.add_argument("--show-errors", type=int, default=20, help="bad rows printed to stderr (all are counted)")
    parser.add_argument("--pseudonymized", action="store_true",
                        help="user ids in the file are already pseudonyms (e.g. exported from a store)")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_const", const=True, default=None,
                          help="always show the progress bar (default: only when stderr is a terminal)")
    progress.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                          help="never show the progress bar")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any row was rejected")


def run(args: argparse.Namespace) -> int:
    from shoprec.data.ingest import IngestError, ingest_file
    from shoprec.settings import get_settings

    try:
        report = ingest_file(
            args.file, kind=args.kind, store_url=args.store, settings=get_settings(), fmt=args.format,
            batch_size=args.batch_size, progress=args.progress, max_shown=args.show_errors,
            rejects_path=args.rejects, pseudonymize_ids=not args.pseudonymized,
        )
    except IngestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary_line())
    if report.rejected:
        print(f"rejected rows: {report.rejects_path}")
    print(json.dumps(report.to_dict()))
    return 1 if args.strict and report.rejected else 0
