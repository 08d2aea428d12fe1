"""`auth0-sync process FILE`: run EventBridge events through the handlers' code, in order."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from auth0_sync.errors import ConfigError
from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS
from auth0_sync_cli.argtypes import real_number
from auth0_sync_cli.local_mode import build_local_sync
from auth0_sync_cli.tally import Tally


class InputError(Exception):
    """The input is not JSON Lines nor a JSON array; the message names the line."""


def _array(text: str, name: str) -> list[Any]:
    try:
        events = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    if not isinstance(events, list):
        raise InputError(f"{name}: expected a JSON array of events")
    return events


def _lines(lines: Iterable[str], name: str) -> Iterator[Any]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{name}:{number}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from exc


def read_events(path: str) -> tuple[str, Iterator[Any]]:
    """The input's name and its events: JSON Lines (blank lines ignored) or one JSON array.

    Every line is checked before the first event is returned, so bad input changes nothing.
    A JSON Lines file is then read again one line at a time: memory stays flat however long
    the file. Standard input cannot be read twice and is held in memory.
    """
    if path == "-":
        text = sys.stdin.read()
        if text.lstrip().startswith("["):
            return "<stdin>", iter(_array(text, "<stdin>"))
        events = list(_lines(text.splitlines(), "<stdin>"))
        return "<stdin>", iter(events)
    try:
        with open(path, encoding="utf-8") as stream:
            head = stream.read(4096).lstrip()
            if head.startswith("["):
                return path, iter(_array(head + stream.read(), path))
            stream.seek(0)
            for _ in _lines(stream, path):
                pass  # validate only
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    return path, _stream_lines(path)


def _stream_lines(path: str) -> Iterator[Any]:
    with open(path, encoding="utf-8") as stream:
        yield from _lines(stream, path)


def run(args: argparse.Namespace) -> int:
    try:
        name, events = read_events(args.file)
    except InputError as exc:
        print(f"auth0-sync process: {exc}", file=sys.stderr)
        return 2
    tally = Tally()
    try:
        local = build_local_sync(args.state, on_outcome=tally.add, timeout_seconds=args.timeout)
    except ConfigError as exc:
        print(f"auth0-sync process: {exc}", file=sys.stderr)
        return 2
    local.runner.run_all(events)
    if args.json:
        print(json.dumps({**tally.to_dict(), "state": "aws" if local.uses_aws else "memory"}))
    else:
        print(f"processed {name} ({'local AWS' if local.uses_aws else 'in-memory state'}):")
        print(tally.render())
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "process",
        help="run EventBridge events (JSON Lines or a JSON array) through the sync",
        description="Run events through the same routing and handler code Lambda runs. "
        "Configuration: CRM_BASE_URL, CRM_API_TOKEN (or CRM_TOKEN_SECRET_ARN), and "
        "AWS_ENDPOINT_URL to use `auth0-sync local-aws`.",
    )
    parser.add_argument("file", metavar="FILE", help="events file, or - for standard input")
    parser.add_argument("--json", action="store_true", help="print one JSON object of counts")
    parser.add_argument(
        "--state",
        choices=("auto", "aws", "memory"),
        default="auto",
        help="sync state, idempotency and DLQ: AWS APIs (local-aws) or memory; "
        "auto = aws when AWS_ENDPOINT_URL is set",
    )
    parser.add_argument(
        "--timeout",
        type=real_number(above_zero=True),
        default=FUNCTION_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="each invocation's time budget, as the function's timeout in AWS "
        "(default %(default)s); a CRM outage is waited out within it, then retried",
    )
    parser.set_defaults(func=run)
