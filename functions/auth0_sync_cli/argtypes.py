"""argparse types for numeric flags: a clear message naming what was wrong with the value."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any


def whole_number(
    low: int, high: int | None = None, *, what: str = "a whole number"
) -> Callable[[str], int]:
    """An int in [low, high] (no upper bound when high is None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def real_number(*, above_zero: bool = False, high: float | None = None) -> Callable[[str], float]:
    """A float >= 0 (> 0 with above_zero), at most high when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 if above_zero else value >= 0):
            raise argparse.ArgumentTypeError(f"must be {'>' if above_zero else '>='} 0, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be between 0 and {high:g}, got {text}")
        return value

    return parse


class ExtendUnique(argparse.Action):
    """A repeatable flag whose values (a list per use, from its `type`) gather in order, each
    once: `--type user.created --type user.deleted,user.created` -> both types, once."""

    def __call__(
        self,
        _parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        _option_string: str | None = None,
    ) -> None:
        gathered = list(getattr(namespace, self.dest, None) or [])
        items = values if isinstance(values, list) else [values]
        gathered.extend(item for item in items if item not in gathered)
        setattr(namespace, self.dest, gathered)


def add_batch_arguments(parser: argparse.ArgumentParser, *, batch_help: str) -> None:
    """--batch/--no-batch (on by default; `batch_help` says what it gathers for the command)
    and --batch-size N, the same for every command that sends batch calls."""
    parser.add_argument(
        "--batch", action=argparse.BooleanOptionalAction, default=True, help=batch_help
    )
    parser.add_argument(
        "--batch-size",
        type=whole_number(1),
        metavar="N",
        help="at most N records a batch request (default and most: the destination's own "
        "limit, 100; Salesforce 200)",
    )
