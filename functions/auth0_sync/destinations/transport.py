"""One HTTP retry policy for every outbound client (the CRM adapters, the Auth0 Management
API client): what is retried, how long to wait (`Retry-After`, a vendor's own hint, else
jittered exponential backoff), and when to stop (attempts, a retry budget, the invocation's
remaining time, a circuit breaker). The clients keep their own meaning of the answers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.util import Retry

from auth0_sync.destinations.limits import RollingLimit
from auth0_sync.errors import InvalidEvent, PermanentError, TransientError

RemainingMillis = Callable[[], int]
# A vendor's own "wait this long" (seconds) read from an answer, or None: use Retry-After.
WaitHint = Callable[[requests.Response], float | None]

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


# After this many outage failures in a row the circuit opens for the cool-down: shorter
# than Lambda's first retry (a minute), so a retried event probes the server again.
CIRCUIT_THRESHOLD = 5
CIRCUIT_COOL_DOWN_SECONDS = 30.0


class CircuitBreaker:
    """Per process (one warm Lambda container, one `process` run): after `threshold`
    consecutive outage failures, calls fail fast for `cool_down` seconds; then one probe
    is let through, and its answer closes the circuit or opens it again."""

    def __init__(
        self,
        threshold: int = CIRCUIT_THRESHOLD,
        cool_down: float = CIRCUIT_COOL_DOWN_SECONDS,
        name: str = "crm",
    ) -> None:
        self.threshold = threshold
        self.cool_down = cool_down
        self.name = name
        self._last_reason = f"{name}_circuit_open"
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self._lock = threading.Lock()
        self.opened = 0  # how many times it opened (for tests and benchmarks)

    def before_call(self) -> None:
        with self._lock:
            if self._failures < self.threshold:
                return
            now = time.monotonic()
            if now < self._open_until or self._probing:
                left = max(0.0, self._open_until - now)
                # The reason stays the server's own (crm_503, crm_timeout...): it says what
                # is wrong; the message says why no call was made.
                raise TransientError(
                    f"{self.name}: circuit open after {self._failures} failures in a row, "
                    f"the last {self._last_reason} (next probe in {left:.0f}s)",
                    self._last_reason,
                )
            self._probing = True  # half-open: this call is the probe

    def abandon(self) -> None:
        """A call that never reached the server: it says nothing about the server's health."""
        with self._lock:
            self._probing = False

    def record(self, outage: bool, reason: str | None = None) -> None:
        with self._lock:
            self._probing = False
            if not outage:
                self._failures = 0
                return
            self._failures += 1
            self._last_reason = reason or f"{self.name}_circuit_open"
            if self._failures >= self.threshold:
                if self._open_until <= time.monotonic():
                    self.opened += 1
                self._open_until = time.monotonic() + self.cool_down


def last_answer(exc: BaseException) -> requests.Response | None:
    """The last answer of a `TransientError` raised when retrying a status ended (None for
    timeouts and connection errors). The error stays a plain `TransientError`: its class
    name is what Lambda's on-failure record and the DLQ keep."""
    response = getattr(exc, "response", None)
    return response if isinstance(response, requests.Response) else None


@dataclass(frozen=True)
class RetryPolicy:
    """What is retried and for how long. `backoff_base * 2**attempt` is the ceiling of the
    n-th wait (full jitter unless `jitter` is off); `max_wait` caps any one wait (else a
    wait that would pass the budget ends the retries); `budget_seconds` bounds the time
    one call may spend retrying; `margin_ms` is kept free of the invocation's deadline.
    `max_attempts` counts the first request: at least 1."""

    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 8.0
    budget_seconds: float | None = 10.0
    margin_ms: int = 1500
    statuses: Collection[int] = TRANSIENT_STATUSES
    retry_unreachable: bool = True
    jitter: bool = True
    max_wait: float | None = None

    def __post_init__(self) -> None:
        # Zero attempts would send nothing and still fail, with no reason to give.
        if self.max_attempts < 1:
            raise ValueError(
                f"RetryPolicy: max_attempts must be at least 1, not {self.max_attempts}"
            )

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        return random.uniform(0, ceiling) if self.jitter else ceiling


_RETRY_AFTER = Retry()  # used only to parse Retry-After (seconds or an HTTP date)


def json_body(response: requests.Response, what: str) -> Any:
    """A destination's answer as JSON; an answer that is not JSON is `crm_bad_answer`
    (transient: a proxy's error page, a half-written body)."""
    try:
        return response.json()
    except ValueError as exc:
        raise TransientError(
            f"crm {what}: HTTP {response.status_code} with a body that is not JSON",
            "crm_bad_answer",
        ) from exc


def retry_after(response: requests.Response) -> float | None:
    """`Retry-After` in seconds (it may be an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(_RETRY_AFTER.parse_retry_after(value)))
    except Exception:  # an unparseable header falls back to the policy's backoff
        return None


def _never_connected(exc: requests.RequestException) -> bool:
    """Whether a request failed before any connection existed (refused, no such host, a
    connect timeout): nothing was sent, so nothing can land. A connection reset or closed,
    or a read timeout, came after the request may have left."""
    # requests wraps urllib3's MaxRetryError, whose `reason` says what went wrong (a
    # NameResolutionError is a NewConnectionError too).
    return isinstance(exc, requests.ConnectTimeout) or any(
        isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)
        for cause in exc.args
    )


class HttpTransport:
    """A pooled session that sends one request under the retry policy.

    It answers the response for a success or for any status the policy does not retry, and
    raises `TransientError` (reason `<name>_<status>`, `<name>_timeout`,
    `<name>_unreachable`; `last_answer` gives the last answer) when retrying ends.
    """

    def __init__(
        self,
        name: str = "crm",
        policy: RetryPolicy | None = None,
        *,
        timeout: float | tuple[float, float] = 10.0,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
        wait_hint: WaitHint | None = None,
        retryable: Callable[[requests.Response], bool] | None = None,
        config_hint: str = "check CRM_BASE_URL",
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.policy = policy or RetryPolicy()
        self.breaker = breaker
        self.retries = 0
        self._timeout = timeout
        self._wait_hint = wait_hint
        self._retryable = retryable
        self._config_hint = config_hint
        self._sleep_with = sleep
        self._clock = clock
        self._local = threading.local()
        if session is None:
            session = requests.Session()
            # This loop retries (it knows the deadline); the pool is sized for threads.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        """Bound the calling thread's retries by the current invocation's remaining time
        (None: no bound). Per thread: where one invocation runs several users at once (a
        queue batch's lanes), one user's end must not unbind the others' retries."""
        self._local.remaining = remaining_ms

    @property
    def _remaining(self) -> RemainingMillis | None:
        remaining: RemainingMillis | None = getattr(self._local, "remaining", None)
        return remaining

    def calls_made(self) -> int:
        """HTTP requests sent by the calling thread so far (retries included)."""
        return int(getattr(self._local, "calls", 0))

    def unsure_writes(self) -> int:
        """Writes (any method but GET/HEAD) sent by the calling thread whose outcome is
        unknown: a timeout or a lost connection after the request left, a 5xx other than
        503, or a 408. One may still be applied later, even after a retry succeeded. A
        connection never made (refused, a connect timeout) sent nothing: not counted."""
        return int(getattr(self._local, "unsure", 0))

    def _unsure(self, method: str) -> None:
        if method.upper() not in ("GET", "HEAD"):
            self._local.unsure = self.unsure_writes() + 1

    def time_left_for(self, delay: float) -> bool:
        """Whether waiting `delay` seconds still leaves the invocation its margin."""
        if self._remaining is None:
            return True
        return delay * 1000 + self.policy.margin_ms < self._remaining()

    def _sleep(self, delay: float) -> None:
        (self._sleep_with or time.sleep)(delay)

    def wait(self, delay: float) -> None:
        """Sleep `delay` seconds (through the injected sleep, if any)."""
        self._sleep(delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        repeatable: bool = True,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send `method url`; `repeatable=False` sends it once (a POST the server cannot
        recognise when repeated). `what` names the call in every error message."""
        policy = self.policy
        attempts = policy.max_attempts if repeatable else 1
        started = self._clock()
        problem, reason = "", ""
        last: requests.Response | None = None
        for attempt in range(1, attempts + 1):
            if self.breaker is not None:
                self.breaker.before_call()
            self._local.calls = self.calls_made() + 1
            hint: float | None = None
            try:
                response = self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    timeout=self._request_timeout(),
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = type(exc).__name__
                timed_out = isinstance(exc, requests.Timeout)
                reason = f"{self.name}_{'timeout' if timed_out else 'unreachable'}"
                self._record(outage=True, reason=reason)
                if not _never_connected(exc):
                    self._unsure(method)  # the request may have left: it may still land
                if not policy.retry_unreachable:
                    raise TransientError(f"{what}: {problem}", reason) from exc
                last = None
            except requests.exceptions.InvalidJSONError as exc:
                self._abandon()
                raise InvalidEvent(f"{what}: the values sent are not valid JSON") from exc
            except requests.RequestException as exc:
                self._abandon()
                # MissingSchema, InvalidURL...: the configured URL, not the event.
                raise PermanentError(
                    f"{self.name}_config", f"{what}: {type(exc).__name__}: {self._config_hint}"
                ) from exc
            else:
                status = response.status_code
                # A 429 is backpressure, not an outage: it never opens the circuit.
                self._record(outage=status >= 500 or status == 408, reason=f"{self.name}_{status}")
                if (status >= 500 and status != 503) or status == 408:
                    # A gateway's answer: the server may apply it still (a 503 says it
                    # could not take the request; a 429 that it did not).
                    self._unsure(method)
                if not self._should_retry(response):
                    return response
                problem, reason, last = f"HTTP {status}", f"{self.name}_{status}", response
                hint = self._wait_hint(response) if self._wait_hint else None
                if hint is None:
                    hint = retry_after(response)
            if attempt == attempts:
                break
            delay = policy.backoff(attempt) if hint is None else hint + _jitter(policy)
            if policy.max_wait is not None:
                delay = min(delay, policy.max_wait)
            budget = policy.budget_seconds
            if budget is not None and self._clock() - started + delay > budget:
                self._give_up(
                    f"{what}: {problem}; waiting {delay:.1f}s more would pass the "
                    f"{budget:.0f}s retry budget",
                    reason,
                    last,
                )
            if not self.time_left_for(delay):
                self._give_up(
                    f"{what}: {problem}; no time left in this invocation to wait {delay:.1f}s",
                    reason,
                    last,
                )
            self.retries += 1
            self._sleep(delay)
        self._give_up(f"{what}: {problem} after {attempts} attempt(s)", reason, last)
        raise AssertionError("unreachable")  # pragma: no cover

    def _should_retry(self, response: requests.Response) -> bool:
        if self._retryable is not None and self._retryable(response):
            return True
        return response.status_code in self.policy.statuses

    @staticmethod
    def _give_up(message: str, reason: str, last: requests.Response | None) -> None:
        error = TransientError(message, reason)
        error.response = last  # type: ignore[attr-defined]
        raise error

    def _record(self, outage: bool, reason: str | None = None) -> None:
        if self.breaker is not None:
            self.breaker.record(outage, reason)

    def _abandon(self) -> None:
        if self.breaker is not None:
            self.breaker.abandon()

    def _request_timeout(self) -> float | tuple[float, float]:
        if self._remaining is None or isinstance(self._timeout, tuple):
            return self._timeout
        left = (self._remaining() - self.policy.margin_ms) / 1000
        return max(0.5, min(self._timeout, left))


class OverTransport:
    """What every destination adapter exposes of its transport: the invocation's deadline,
    the calls made, the retries and the circuit breaker (the runner scales its cool-down)."""

    transport: HttpTransport

    @property
    def limits(self) -> tuple[RollingLimit, ...]:
        """The client-side rate limits the adapter keeps (a wait for a slot can last up to
        a window): none unless the vendor declares one."""
        return ()

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        """Bound retries by the current invocation's remaining time (None: no bound)."""
        self.transport.set_deadline(remaining_ms)

    def calls_made(self) -> int:
        """HTTP requests sent by the calling thread so far (retries included)."""
        return self.transport.calls_made()

    def unsure_writes(self) -> int:
        """Writes of the calling thread whose outcome is unknown (see HttpTransport)."""
        return self.transport.unsure_writes()

    @property
    def retries(self) -> int:
        return self.transport.retries

    @property
    def breaker(self) -> CircuitBreaker | None:
        return self.transport.breaker


def _jitter(policy: RetryPolicy) -> float:
    # A little jitter so a burst of clients does not come back in lock step.
    return random.uniform(0, 0.05) if policy.jitter else 0.0
