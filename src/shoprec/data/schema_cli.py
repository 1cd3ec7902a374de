"""`shoprec schema`: print the documented JSON schema."""

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from shoprec.data.schemas import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
