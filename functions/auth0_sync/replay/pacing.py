"""How fast and how long a replay runs: the rate shared with live traffic, the time budget."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """At most `rate` events per second, spaced evenly (clock and sleep injectable)."""

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

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class Budget:
    """Whether there is time for one more event: `remaining()` seconds against a reserve
    (one handler invocation and the clean-up after it). No budget: always time left."""

    def __init__(self, remaining: Callable[[], float] | None = None, reserve: float = 0.0) -> None:
        self.remaining = remaining
        self.reserve = reserve

    def allows_another(self) -> bool:
        return self.remaining is None or self.remaining() > self.reserve
