"""`auth0-sync` entry point: each command lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

# Modules under auth0_sync_cli, each adding its sub-command(s) through `register`.
COMMAND_MODULES: tuple[str, ...] = (
    "crm_server",
    "process",
    "local_aws",
    "streams",
    "dlq",
    "replay",
    "redrive",
    "demo",
)


class Parser(argparse.ArgumentParser):
    """No abbreviated flags: `--stat` must not silently mean `--state`.

    Sub-command parsers are created with the parent's class, so this holds at every level.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="auth0-sync",
        description="Keep a CRM in step with Auth0 identities (Auth0 Event Streams -> AWS).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"auth0_sync_cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
