"""How fast and how long a replay, a redrive or a backfill runs: the rate it shares with
live traffic (one token bucket), and the time budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most `rate` tokens a second, evenly spaced, shared by threads; None: no limit.

    A reservation moves the next free moment forward, so waiting happens outside the lock;
    `charge` books calls already made (it may put the bucket in debt, paid by later takers).
    """

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()
        self.taken = 0

    def take(self, tokens: int = 1) -> None:
        with self._lock:
            self.taken += tokens
            if not self.interval:
                return
            now = self.clock()
            start = max(now, self._next)
            self._next = start + tokens * self.interval
        if start > now:
            self.sleep(start - now)

    def charge(self, tokens: int) -> None:
        if tokens <= 0:
            return
        with self._lock:
            self.taken += tokens
            if self.interval:
                self._next = max(self.clock(), self._next) + tokens * self.interval


class Budget:
    """Whether there is time for one more event: `remaining()` seconds against a reserve
    (one handler invocation and the clean-up after it). No budget: always time left."""

    def __init__(self, remaining: Callable[[], float] | None = None, reserve: float = 0.0) -> None:
        self.remaining = remaining
        self.reserve = reserve

    def allows_another(self) -> bool:
        return self.remaining is None or self.remaining() > self.reserve
