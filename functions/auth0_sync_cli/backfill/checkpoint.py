"""The backfill's checkpoint: the last export line up to which every user is done.

Workers finish out of order, so the checkpoint is the highest line L such that lines 1..L
are all done; lines after L that finished too are simply run again on resume, where the
state item turns them away as duplicates at no CRM cost. The file is replaced atomically
(write, then rename), so a kill at any moment leaves the previous checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from auth0_sync_cli.exits import CommandError

SAVE_EVERY_SECONDS = 2.0
VERSION = 1


@dataclass
class Checkpoint:
    """Progress through one export file, saved to `path` (None: kept in memory only)."""

    path: str | None
    export: str
    done_through: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    clock: Callable[[], float] = time.monotonic
    _finished: set[int] = field(default_factory=set)
    _saved_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, path: str | None, export: str | None) -> Checkpoint:
        """Resume from `path` when it exists (its export must be this one), else start."""
        if path is None or not os.path.exists(path):
            if export is None:
                raise CommandError("give --export FILE, or --checkpoint of an earlier run")
            return cls(path, export)
        try:
            with open(path, encoding="utf-8") as stream:
                saved = json.load(stream)
            recorded = str(saved["export"])
            done = int(saved["done_through"])
            counts = Counter({str(k): int(v) for k, v in dict(saved.get("counts", {})).items()})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(
                f"--checkpoint {path}: not a checkpoint this command wrote ({exc}); "
                "give another file name to start afresh"
            ) from exc
        if export is not None and os.path.abspath(export) != os.path.abspath(recorded):
            raise CommandError(
                f"--checkpoint {path} belongs to the export {recorded}, not {export}: pass "
                "that --export to resume it, or another --checkpoint to start afresh"
            )
        if not os.path.exists(recorded):
            raise CommandError(
                f"--checkpoint {path}: its export {recorded} is gone; start afresh with "
                "another --checkpoint"
            )
        return cls(path, recorded, done, counts)

    def finished(self, line: int, category: str) -> None:
        """Line `line` is done (its outcome category counted); saved now and then."""
        with self._lock:
            self.counts[category] += 1
            self._finished.add(line)
            while self.done_through + 1 in self._finished:
                self.done_through += 1
                self._finished.discard(self.done_through)
            due = self.clock() - self._saved_at >= SAVE_EVERY_SECONDS
        if due:
            self.save()

    def skipped_blank(self, line: int) -> None:
        with self._lock:
            self._finished.add(line)
            while self.done_through + 1 in self._finished:
                self.done_through += 1
                self._finished.discard(self.done_through)

    def save(self) -> None:
        with self._lock:
            self._saved_at = self.clock()
            document: dict[str, Any] = {
                "version": VERSION,
                "export": os.path.abspath(self.export),
                "done_through": self.done_through,
                "counts": dict(sorted(self.counts.items())),
            }
            if self.path is None:
                return
            partial = f"{self.path}.part"
            try:
                with open(partial, "w", encoding="utf-8") as stream:
                    json.dump(document, stream, indent=2)
                os.replace(partial, self.path)
            except OSError as exc:
                raise CommandError(f"--checkpoint {self.path}: cannot write it: {exc}") from exc
