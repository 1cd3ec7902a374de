"""`shoprec` command line. Each subcommand lives in its own module and is imported only when run.

A handler module defines `add_arguments(parser)` and `run(args) -> int | None`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (handler module, one-line help). `bench` has its own subcommands.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo-data": ("shoprec.data.demo_cli", "generate the demo shop (catalog + simulated shoppers) offline"),
    "ingest": ("shoprec.data.ingest_cli", "ingest a catalog or events file (CSV, JSONL, Parquet, S3-Rec, Home Depot)"),
    "build": ("shoprec.build", "build every artifact from the store into a new version"),
    "serve": ("shoprec.service.cli", "start the REST API, storefront and admin UI"),
    "search": ("shoprec.search.cli", "search the current artifact version"),
    "recommend": ("shoprec.recommend.cli", "recommend for a user and scenario"),
    "forget-user": ("shoprec.data.forget_cli", "delete a user's events and profile everywhere"),
    "schema": ("shoprec.data.schema_cli", "print the JSON schema of products, users and events"),
    "evaluate": ("shoprec.evaluation.evaluate_cli", "fit a registered model on a split of the store's events and print offline metrics"),
    "report": ("shoprec.evaluation.report_cli", "render the experiment registry as a self-contained HTML report"),
    "bench": ("shoprec.bench.cli", "benchmarks: search, seqrec, blend, load, abtest, ingest"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoprec", description="E-commerce search and recommendation engine.")
    parser.add_argument("--version", action="version", version=f"shoprec {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _version() -> str:
    from shoprec import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help()
        return 2
    if argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints --help/--version, or the usage error for an unknown command
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"shoprec {name}", description=COMMANDS[name][1])
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
