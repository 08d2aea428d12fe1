"""`auth0-sync` entry point: each command lives in its own module with `register(subparsers)`.

This module owns what every command shares: the exit codes, one error line per mistake
(`auth0-sync COMMAND: error: ...`, a traceback only with --debug), --version, --region and
--profile on the commands that talk to AWS. Each module gives every command an example in
its own epilog (tests/unit/test_cli_conventions.py checks them all).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import select
import sys
import traceback
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from auth0_sync_cli.exits import (
    AWS_ENVIRONMENT_HELP,
    EXIT_CLOSED_OUTPUT,
    EXIT_CODES_HELP,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    explain,
)

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

PROG = "auth0-sync"
# Modules under auth0_sync_cli, each adding its sub-command(s) through `register`.
COMMAND_MODULES: tuple[str, ...] = (
    "crm_server",
    "process",
    "local_aws",
    "sandbox",
    "streams",
    "dlq",
    "replay",
    "redrive",
    "demo",
    "destination",
    "backfill",
    "reconcile",
    "catch_up",
)
# The commands that call AWS APIs: each gets --region and --profile.
AWS_COMMANDS = frozenset(
    f"{PROG} {name}"
    for name in (
        "process",
        "dlq list",
        "dlq show",
        "dlq delete",
        "replay",
        "redrive",
        "backfill",
        "reconcile",
        "catch-up",
        "streams health",
    )
)
# Flags every AWS command takes, accepted before the command too (`auth0-sync --region X dlq
# list`), as the AWS CLI does: {flag: (metavar, help)}.
GLOBAL_AWS_FLAGS = {
    "--region": ("REGION", "AWS region (default: $AWS_DEFAULT_REGION)"),
    "--profile": ("NAME", "AWS profile (default: $AWS_PROFILE)"),
}
# What a near-miss must resemble to be offered as "did you mean".
SUGGESTION_CUTOFF = 0.6


class Parser(argparse.ArgumentParser):
    """No abbreviated flags: `--stat` must not silently mean `--state`.

    Sub-command parsers are created with the parent's class, so this holds at every level.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """As argparse's, without swallowing a closed output: `--help | head` exits 141."""
        if message:
            (file or sys.stderr).write(message)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's "invalid choice", with the nearest choice offered (`dlq lsit`: did
        you mean 'list'?). Python 3.12+ has `suggest_on_error`; we support 3.11."""
        if action.choices is None or value in action.choices:
            return
        choices = [str(choice) for choice in action.choices]
        near = difflib.get_close_matches(str(value), choices, n=1, cutoff=SUGGESTION_CUTOFF)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise argparse.ArgumentError(
            action,
            f"invalid choice: {value!r}{hint}; choose from {', '.join(map(repr, choices))}",
        )


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph text as usual; keeps text with line breaks (examples) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def package_version() -> str:
    try:
        return version("auth0-sync")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def sub_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below `parser`, depth first, each once."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield child
                    yield from sub_parsers(child)


def _finish(parser: argparse.ArgumentParser) -> None:
    """The conventions every command shares, added once here rather than in each module."""
    parser.formatter_class = HelpFormatter
    parser.set_defaults(prog_name=parser.prog)
    # SUPPRESS: a sub-command's absent --debug must not undo `auth0-sync --debug COMMAND`.
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, print the traceback too",
    )
    if parser.prog in AWS_COMMANDS:
        _add_aws_flags(parser)


def _add_aws_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: absent after the command, the value given before it stands.
    for flag, (metavar, help_text) in GLOBAL_AWS_FLAGS.items():
        if flag == "--region" and parser.prog == f"{PROG} streams health":
            # The partner event source lives in the region the stream delivers to.
            help_text += "; an EventBridge stream's own region wins"
        parser.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Keep a CRM in step with Auth0 identities (Auth0 Event Streams -> AWS).",
        epilog=f"examples:\n  {PROG} demo\n  {PROG} process events.jsonl --json\n\n"
        f"{EXIT_CODES_HELP}\n\n{AWS_ENVIRONMENT_HELP}\n\n"
        f"`{PROG} COMMAND --help` tells more about each command.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    parser.add_argument("--debug", action="store_true", help="on an error, print the traceback too")
    _add_aws_flags(parser)
    parser.set_defaults(prog_name=PROG)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"auth0_sync_cli.{name}").register(subparsers)
    for child in sub_parsers(parser):
        _finish(child)
    return parser


def use_aws_options(args: argparse.Namespace) -> None:
    """--region and --profile become boto3's own variables, read by every client we make."""
    given = [flag for flag in GLOBAL_AWS_FLAGS if getattr(args, flag[2:], None) is not None]
    if given and args.prog_name not in AWS_COMMANDS:
        commands = ", ".join(sorted(name.removeprefix(f"{PROG} ") for name in AWS_COMMANDS))
        raise CommandError(
            f"{'/'.join(given)} {'goes' if len(given) == 1 else 'go'} with the commands "
            f"that call AWS ({commands}), not {args.prog_name.removeprefix(f'{PROG} ')}"
        )
    if getattr(args, "region", None):
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if getattr(args, "profile", None):
        os.environ["AWS_PROFILE"] = args.profile
    if args.prog_name in AWS_COMMANDS:
        region = os.environ.get("AWS_DEFAULT_REGION")
        if region is not None and not region.strip():
            # boto3 would build https://sqs..amazonaws.com and fail with "Invalid endpoint".
            raise CommandError(
                "AWS_DEFAULT_REGION is set but empty: unset it, set it to a region "
                "(e.g. eu-west-1), or pass --region"
            )


def _say(line: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # stderr closed: nobody to tell
        print(line, file=sys.stderr, flush=True)


def _stdout_is_closed() -> bool:
    """The reader of standard output has gone (a pipe's far end closed)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
    except (ValueError, OSError):  # closed, or not a real file
        return True
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _closed_pipe_in(exc: BaseException) -> bool:
    """A BrokenPipeError is the error or its cause (a command that wrapped it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BrokenPipeError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = argparse.Namespace(prog_name=PROG, debug=False)
    try:
        # Inside the handler: a --help piped into `head` is a closed output like any other.
        try:
            args = parser.parse_args(argv)
        except SystemExit:
            # --help, --version, a usage error: what argparse wrote is flushed here, so a
            # closed output exits 141 instead of failing unseen in Python's flush at exit.
            sys.stdout.flush()
            raise
        use_aws_options(args)
        code: int = args.func(args)
        sys.stdout.flush()  # the same for a command's last, still buffered lines
    except KeyboardInterrupt:
        _say(f"{args.prog_name}: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        return _failed(exc, args)
    return code


def _failed(exc: Exception, args: argparse.Namespace) -> int:
    """One line for the error, and its exit code; the traceback only with --debug."""
    prog: str = args.prog_name
    if _closed_pipe_in(exc) and _stdout_is_closed():
        # `auth0-sync dlq list | head`: the reader went away. Point stdout at devnull so
        # Python's own flush at exit does not print a second error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_OUTPUT
    if getattr(args, "debug", False):
        traceback.print_exc()
    message = explain(exc)
    if message is None:
        _say(
            f"{prog}: internal error: {type(exc).__name__}: {exc} (a bug: run again with "
            "--debug for the traceback and report it)"
        )
        return EXIT_INTERNAL
    _say(f"{prog}: error: {message}")
    return exc.code if isinstance(exc, CommandError) else EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
