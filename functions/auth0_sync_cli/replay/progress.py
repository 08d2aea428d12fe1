"""A one-line progress bar on stderr (a TTY, or when asked)."""

from __future__ import annotations

import sys
from collections import Counter
from typing import IO

from auth0_sync.replay.replayer import EventResult


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

    def update(self, result: EventResult) -> None:
        self.done += 1
        self.counts[result.status] += 1
        width = 30
        filled = int(width * self.done / max(1, self.total))
        summary = "  ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(self.counts.items()))
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done}/{self.total}  {summary}"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.done:
            self.stream.write("\n")
            self.stream.flush()
