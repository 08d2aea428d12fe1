"""A one-line progress bar on stderr (a TTY, or when asked): replay, redrive, `process`
and the demo's long steps."""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO, Protocol


class HasStatus(Protocol):
    """A replay's `EventResult` or the sync's `Outcome`: anything with a status."""

    @property
    def status(self) -> str: ...


class Progress:
    """`replay [#####.....] 12/40  applied 10  failed 2`, redrawn in place."""

    def __init__(self, label: str = "replay", stream: IO[str] | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0
        self.counts: Counter[str] = Counter()

    def start(self, total: int) -> None:
        self.total = total

    def update(self, result: HasStatus) -> None:
        self.done += 1
        self.counts[result.status] += 1
        self.draw()

    def draw(self) -> None:
        width = 30
        filled = int(width * self.done / max(1, self.total))
        summary = "  ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.counts.items()))
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total}  {summary}"
        )
        self.stream.flush()

    def clear(self) -> None:
        """Erase the line (before other output, or when the step is over)."""
        if self.done:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def finish(self) -> None:
        if self.done:
            self.stream.write("\n")
            self.stream.flush()


def on_a_terminal(label: str, total: int, stream: IO[str] | None = None) -> Progress | None:
    """A progress line when `stream` (stderr) is a terminal; None in pipes, files, tests."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None
    progress = Progress(label, stream)
    progress.start(total)
    return progress
