"""argparse types for numeric flags: a clear message naming what was wrong with the value."""

from __future__ import annotations

import argparse
from collections.abc import Callable


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
