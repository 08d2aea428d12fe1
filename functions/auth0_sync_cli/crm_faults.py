"""Fault injection and request counts of the reference CRM, applied to every contract path."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from flask import Response

from auth0_sync_cli.crm_http import error_response


class Faults:
    """Fault injection settings, decided per request before any change is made."""

    def __init__(
        self,
        *,
        latency_ms: float = 0,
        rate_limit: float | None = None,
        failure_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rng = random.Random(seed)
        self._window_start = 0.0
        self._window_count = 0
        self.latency_ms = 0.0
        self.rate_limit: float | None = None
        self.failure_rate = 0.0
        self.outage: int | None = None
        self.batch_cut: int | None = None
        self.set_latency(latency_ms)
        self.set_rate_limit(rate_limit)
        self.set_failure_rate(failure_rate)

    def set_latency(self, latency_ms: float) -> None:
        """Sleep this long before answering each contract request."""
        if not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms!r}")
        self.latency_ms = float(latency_ms)

    def set_rate_limit(self, rps: float | None) -> None:
        """Allow `rps` requests per one-second window (None = unlimited)."""
        if rps is not None and not rps > 0:
            raise ValueError(f"rate limit must be > 0 requests per second or None, got {rps!r}")
        with self._lock:
            self.rate_limit = None if rps is None else float(rps)
            self._window_start = 0.0
            self._window_count = 0

    def set_failure_rate(self, rate: float) -> None:
        """Answer this share of contract requests (0..1) with 503."""
        if not 0 <= rate <= 1:
            raise ValueError(f"failure rate must be between 0 and 1, got {rate!r}")
        self.failure_rate = float(rate)

    def set_outage(self, status: int | None) -> None:
        """Answer every contract request with `status` (None = outage off)."""
        if status is not None and not 400 <= status <= 599:
            raise ValueError(f"outage status must be an HTTP error status 400..599, got {status}")
        self.outage = status

    def set_batch_cut(self, after: int | None) -> None:
        """A batch of more than `after` operations applies its first `after`, then answers
        503: the contract's "after a 5xx some operations may have been applied" (None = off)."""
        if after is not None and (
            isinstance(after, bool) or not isinstance(after, int) or after < 0
        ):
            raise ValueError(f"batch cut must be a whole number >= 0 or None, got {after!r}")
        self.batch_cut = after

    def describe(self) -> dict[str, Any]:
        """The current settings, as the admin endpoints report them."""
        return {
            "latency_ms": self.latency_ms,
            "rate_limit": self.rate_limit,
            "failure_rate": self.failure_rate,
            "outage": self.outage,
            "batch_cut": self.batch_cut,
        }

    def _rate_limited(self) -> int | None:
        """Seconds until the window resets if this request is over the limit, else None."""
        rps = self.rate_limit
        if rps is None:
            return None
        # Fixed windows of one second holding floor(rps) requests; below 1 rps, one request
        # per window of 1/rps seconds, so a fractional limit still means what it says.
        window, allowed = (1.0, math.floor(rps)) if rps >= 1 else (1.0 / rps, 1)
        now = self._clock()
        start = math.floor(now / window) * window
        if start != self._window_start:
            self._window_start, self._window_count = start, 0
        if self._window_count < allowed:
            self._window_count += 1
            return None
        return max(1, math.ceil(start + window - now))

    def decide(self) -> Response | None:
        """The fault response for this request, or None to serve it normally."""
        if self.outage is not None:
            response = error_response(self.outage, "outage", "the CRM is in a simulated outage")
            if self.outage == 429:
                response.headers["Retry-After"] = "1"
            return response
        with self._lock:
            retry_after = self._rate_limited()
            failed = retry_after is None and self._rng.random() < self.failure_rate
        if retry_after is not None:
            response = error_response(
                429, "rate_limited", f"over {self.rate_limit:g} requests per second; retry later"
            )
            response.headers["Retry-After"] = str(retry_after)
            return response
        if failed:
            return error_response(
                503, "unavailable", "simulated failure (failure rate); retry later"
            )
        return None


class RequestStats:
    """Counts of contract requests by method and by response status."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_method: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def record(self, method: str, status: int) -> None:
        """Count one answered contract request."""
        with self._lock:
            self._by_method[method] += 1
            self._by_status[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        """`{"total": n, "by_method": {...}, "by_status": {...}}`."""
        with self._lock:
            by_method = {"GET": 0, "POST": 0, "PATCH": 0, **self._by_method}
            return {
                "total": sum(self._by_method.values()),
                "by_method": by_method,
                "by_status": dict(sorted(self._by_status.items())),
            }

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._by_method.clear()
            self._by_status.clear()
