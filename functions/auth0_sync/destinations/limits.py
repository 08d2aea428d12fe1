"""A client-side rolling-window rate limit: keeps one process under a vendor's limit
before the vendor has to say 429 (the shared transport still honours the 429s that come
from other processes sharing the account)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from auth0_sync.errors import TransientError


class RollingLimit:
    """At most `max_calls` sends in any `window` seconds, per process (thread-safe)."""

    def __init__(
        self,
        max_calls: int,
        window: float,
        *,
        name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_calls = max_calls
        self.window = window
        self.name = name
        self.waited = 0.0  # seconds spent waiting for a slot (for tests and benchmarks)
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def learn(
        self, max_calls: int | None, window: float | None, remaining: int | None = None
    ) -> None:
        """What the vendor's answers say the limit is (their headers beat our defaults).
        `remaining`: the calls the vendor still allows in the current window, for the
        whole account: calls of other processes (a backfill, other functions) count too,
        so the calls we cannot see are taken as made now (they leave our count a window
        later, no sooner than the vendor's)."""
        with self._lock:
            if max_calls and max_calls > 0:
                self.max_calls = max_calls
            if window and window > 0:
                self.window = window
            if remaining is None or remaining < 0:
                return
            now = self._clock()
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            unseen = self.max_calls - remaining - len(self._sent)
            self._sent.extend([now] * max(0, unseen))

    def acquire(self, time_left: Callable[[float], bool], sleep: Callable[[float], None]) -> None:
        """Wait for a free slot and take it; a wait the invocation cannot afford is a
        `TransientError` (reason `crm_429`: the same backpressure the vendor would answer)."""
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if len(self._sent) < self.max_calls:
                    self._sent.append(now)
                    return
                # A little margin: the vendor's clock sees our sends a moment later.
                delay = self._sent[0] + self.window - now + self.window * 0.05
            if not time_left(delay):
                raise TransientError(
                    f"crm: {self.name} limit of {self.max_calls} per {self.window:g}s reached; "
                    f"no time left in this invocation to wait {delay:.1f}s",
                    "crm_429",
                )
            self.waited += delay
            sleep(delay)
