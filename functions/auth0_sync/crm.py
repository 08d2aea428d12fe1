"""The CRM adapter: the generic REST contacts API (docs/contracts/crm-contacts-api.yaml).

It is the only module that speaks HTTP to the CRM, and it turns every HTTP outcome into a
domain error once: 429/408/5xx/timeouts/connection errors are retried with jittered backoff
that honours `Retry-After` within a retry budget and the invocation's remaining time, then
raise `TransientError`; any other 4xx raises `CrmRejected` with a redacted message (a CRM
that echoes the rejected value must not put an email into a log). A run of outage failures
opens a circuit breaker: calls then fail at once for a cool-down, and one probe decides.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from auth0_sync.errors import (
    ContactExists,
    CrmRejected,
    EmailTaken,
    InvalidEvent,
    PermanentError,
    TransientError,
)
from auth0_sync.privacy import redact

Contact = dict[str, Any]
RemainingMillis = Callable[[], int]

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Crm(Protocol):
    """What the sync core needs from an external system; a second CRM implements this."""

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]: ...

    def get_contact(self, contact_id: str) -> Contact | None: ...

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact: ...

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None: ...

    def calls_made(self) -> int: ...

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None: ...


class CircuitBreaker:
    """Per process (one warm Lambda container, one `process` run): after `threshold`
    consecutive outage failures, calls fail fast for `cool_down` seconds; then one probe
    is let through, and its answer closes the circuit or opens it again."""

    def __init__(self, threshold: int = 5, cool_down: float = 30.0) -> None:
        self.threshold = threshold
        self.cool_down = cool_down
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
                raise TransientError(
                    f"crm: circuit open after {self._failures} failures in a row "
                    f"(next probe in {left:.0f}s)",
                    "crm_circuit_open",
                )
            self._probing = True  # half-open: this call is the probe

    def abandon(self) -> None:
        """A call that never reached the CRM: it says nothing about the CRM's health."""
        with self._lock:
            self._probing = False

    def record(self, outage: bool) -> None:
        with self._lock:
            self._probing = False
            if not outage:
                self._failures = 0
                return
            self._failures += 1
            if self._failures >= self.threshold:
                if self._open_until <= time.monotonic():
                    self.opened += 1
                self._open_until = time.monotonic() + self.cool_down


class RestCrmClient:
    """Generic REST contacts client: pooled session, bearer token, bounded retries."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        timeout_seconds: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_cap: float = 8.0,
        retry_budget_seconds: float = 10.0,
        margin_ms: int = 1500,
        session: requests.Session | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._retry_budget = retry_budget_seconds
        self._margin_ms = margin_ms
        self._remaining: RemainingMillis | None = None
        self._local = threading.local()
        self._retry_after = Retry()  # used only to parse Retry-After (seconds or HTTP date)
        self.breaker = breaker or CircuitBreaker()
        self.retries = 0
        if session is None:
            session = requests.Session()
            # Our own loop retries (it knows the deadline); the pool is sized for threads.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self._session = session

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        """Bound retries by the current invocation's remaining time (None: no bound)."""
        self._remaining = remaining_ms

    def calls_made(self) -> int:
        """HTTP requests sent by the calling thread so far (retries included)."""
        return int(getattr(self._local, "calls", 0))

    # The contract --------------------------------------------------------------------

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        """GET /contacts by email (case-insensitive on the CRM side) or Auth0 user id."""
        params = {k: v for k, v in (("email", email), ("auth0_user_id", auth0_user_id)) if v}
        if not params:
            raise ValueError("find_contacts needs an email or an auth0_user_id")
        found = self._json(self._send("GET", "/contacts", params=params), "GET /contacts")
        if not isinstance(found, list):
            raise TransientError("crm GET /contacts: the answer is not a list", "crm_bad_answer")
        return [c for c in found if isinstance(c, dict)]

    def list_contacts(self, limit: int = 100, after: str | None = None) -> list[Contact]:
        """GET /contacts?limit=&after= (contract 1.1): the next page of every contact, in id
        order, after the id `after`; an empty page is the end."""
        params = {"limit": str(limit), **({"after": after} if after else {})}
        page = self._json(self._send("GET", "/contacts", params=params), "GET /contacts")
        if not isinstance(page, list):
            raise TransientError("crm GET /contacts: the answer is not a list", "crm_bad_answer")
        return [{**c, "id": str(c["id"])} for c in page if isinstance(c, dict) and "id" in c]

    def get_contact(self, contact_id: str) -> Contact | None:
        """GET /contacts/{id}; None when there is no such contact."""
        path = _contact_path(contact_id)
        response = self._send("GET", path, missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, f"GET {path}")

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        """POST /contacts; the key makes a retried create return the first contact."""
        response = self._send(
            "POST", "/contacts", json=dict(fields), headers={"Idempotency-Key": idempotency_key}
        )
        return self._contact(response, "POST /contacts")

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        """PATCH /contacts/{id} with only the given fields; None when the contact is gone."""
        path = _contact_path(contact_id)
        response = self._send("PATCH", path, json=dict(fields), missing_ok=True)
        if response.status_code == 404:
            return None
        return self._contact(response, f"PATCH {path}")

    # Transport -----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> requests.Response:
        what = f"crm {method} {path}"
        # A POST is only safe to repeat when the CRM can recognise the repeat.
        attempts = (
            self._max_attempts if method != "POST" or "Idempotency-Key" in (headers or {}) else 1
        )
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            self.breaker.before_call()
            self._local.calls = self.calls_made() + 1
            try:
                response = self._session.request(
                    method,
                    self._base_url + path,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {self._token()}", **(headers or {})},
                    timeout=self._request_timeout(),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.breaker.record(outage=True)
                problem, retry_after = f"{type(exc).__name__}", None
                reason = "crm_timeout" if isinstance(exc, requests.Timeout) else "crm_unreachable"
            except requests.exceptions.InvalidJSONError as exc:
                self.breaker.abandon()
                raise InvalidEvent(f"{what}: the mapped values are not valid JSON") from exc
            except requests.RequestException as exc:
                self.breaker.abandon()
                # MissingSchema, InvalidURL...: the CRM_BASE_URL setting, not the event.
                raise PermanentError(
                    "crm_config", f"{what}: {type(exc).__name__}: check CRM_BASE_URL"
                ) from exc
            else:
                status = response.status_code
                # A 429 is backpressure, not an outage: it never opens the circuit.
                self.breaker.record(outage=status >= 500 or status == 408)
                if status < 400 or (status == 404 and missing_ok):
                    return response
                if status not in TRANSIENT_STATUSES:
                    self._raise_permanent(what, response)
                problem, reason = f"HTTP {status}", f"crm_{status}"
                retry_after = self._parse_retry_after(response)
            if attempt == attempts:
                break
            delay = self._delay(attempt, retry_after)
            if time.monotonic() - started + delay > self._retry_budget:
                raise TransientError(
                    f"{what}: {problem}; waiting {delay:.1f}s more would pass the "
                    f"{self._retry_budget:.0f}s retry budget",
                    reason,
                )
            if not self._time_left_for(delay):
                raise TransientError(
                    f"{what}: {problem}; no time left in this invocation to wait {delay:.1f}s",
                    reason,
                )
            self.retries += 1
            time.sleep(delay)
        raise TransientError(f"{what}: {problem} after {attempts} attempt(s)", reason)

    @staticmethod
    def _json(response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(
                f"crm {what}: HTTP {response.status_code} with a body that is not JSON",
                "crm_bad_answer",
            ) from exc

    def _contact(self, response: requests.Response, what: str) -> Contact:
        contact = self._json(response, what)
        if not isinstance(contact, dict) or not isinstance(contact.get("id"), str | int):
            raise TransientError(f"crm {what}: the answer is not a contact", "crm_bad_answer")
        contact["id"] = str(contact["id"])
        return contact

    @staticmethod
    def _raise_permanent(what: str, response: requests.Response) -> None:
        try:
            body = response.json()
            if not isinstance(body, dict):
                body = {}
            detail = body.get("message") or body.get("error") or ""
        except ValueError:
            detail = ""
        message = f"{what}: HTTP {response.status_code}"
        if detail:
            message += f": {redact(str(detail))}"
        if response.status_code == 409:
            if response.request.method == "POST":
                raise ContactExists(message)
            raise EmailTaken(message)
        raise CrmRejected(response.status_code, message)

    def _parse_retry_after(self, response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(self._retry_after.parse_retry_after(value)))
        except Exception:  # an unparseable header falls back to our own backoff
            return None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # A little jitter so a burst of clients does not return in lock step.
            return retry_after + random.uniform(0, 0.05)
        return random.uniform(0, min(self._backoff_cap, self._backoff_base * 2**attempt))

    def _time_left_for(self, delay: float) -> bool:
        if self._remaining is None:
            return True
        return delay * 1000 + self._margin_ms < self._remaining()

    def _request_timeout(self) -> float:
        if self._remaining is None:
            return self._timeout
        left = (self._remaining() - self._margin_ms) / 1000
        return max(0.5, min(self._timeout, left))


def _contact_path(contact_id: str) -> str:
    """The contact's URL path; the id is one escaped segment (`a/../b` stays one id)."""
    segment = quote(str(contact_id), safe="")
    if segment in (".", ".."):
        segment = segment.replace(".", "%2E")  # a dot segment would be resolved away
    return "/contacts/" + segment
