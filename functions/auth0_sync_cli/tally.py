"""Counts of outcomes by status and reason, printed by `process`, `replay` and the demo."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from auth0_sync.sync import Outcome


@dataclass
class Tally:
    events: int = 0
    crm_calls: int = 0
    applied: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome) -> None:
        """Count one outcome (thread-safe: the service may report from worker threads)."""
        bucket = {"applied": self.applied, "skipped": self.skipped}.get(outcome.status, self.failed)
        with self._lock:
            self.events += 1
            self.crm_calls += outcome.crm_calls
            bucket[outcome.reason] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "applied": sum(self.applied.values()),
            "applied_by": dict(sorted(self.applied.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "failed": dict(sorted(self.failed.items())),
            "crm_calls": self.crm_calls,
            "crm_calls_per_event": round(self.crm_calls / self.events, 3) if self.events else 0.0,
        }

    def render(self) -> str:
        """A short human summary, one line per outcome group."""

        def line(title: str, counts: Counter[str]) -> str:
            detail = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))
            return f"  {title:<14}{sum(counts.values()):>6}" + (f"   ({detail})" if detail else "")

        return "\n".join(
            [
                f"  {'events':<14}{self.events:>6}",
                line("applied", self.applied),
                line("skipped", self.skipped),
                line("dead-lettered", self.failed),
                f"  {'CRM calls':<14}{self.crm_calls:>6}   "
                f"({self.to_dict()['crm_calls_per_event']} per event)",
            ]
        )
