"""How long-running commands stop: Ctrl-C (SIGINT) and `kill` (SIGTERM) both run the clean-up."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt; the old handler comes back after."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def held_stop_signals() -> Iterator[Callable[[], signal.Signals]]:
    """Hold SIGINT and SIGTERM for the block; yields a function that waits for one of them.

    Enter it before starting any thread (threads inherit the mask) and before announcing
    readiness: a signal that comes at any moment after that, even before the wait begins,
    stays pending until the wait takes it. Nothing is raised in the middle of start-up, so
    a server always stops through its own clean-up. A second signal still pending when the
    block ends is delivered then, with its usual effect.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield lambda: signal.Signals(signal.sigwait(STOP_SIGNALS))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
