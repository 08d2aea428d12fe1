"""The CRM adapter: the generic REST contacts API (docs/contracts/crm-contacts-api.yaml).

It is the only module that speaks HTTP to the CRM. It turns HTTP outcomes into domain
errors once: 429/408/5xx/timeouts/connection errors are retried with jittered backoff that
honours `Retry-After` but never sleeps past the invocation's remaining time, then raise
`TransientError`; any other 4xx raises `CrmRejected` carrying the CRM's own message.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from auth0_sync.errors import ContactExists, CrmRejected, TransientError

Contact = dict[str, Any]
RemainingMillis = Callable[[], int]

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Crm(Protocol):
    """What the sync core needs from an external system; a second CRM implements this."""

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]: ...

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact: ...

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None: ...

    def calls_made(self) -> int: ...

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None: ...


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
        margin_ms: int = 1500,
        session: requests.Session | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._margin_ms = margin_ms
        self._remaining: RemainingMillis | None = None
        self._local = threading.local()
        self._retry_after = Retry()  # used only to parse Retry-After (seconds or HTTP date)
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
        response = self._send("GET", "/contacts", params=params)
        found: list[Contact] = response.json()
        return found

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        """POST /contacts; the key makes a retried create return the first contact."""
        response = self._send(
            "POST", "/contacts", json=dict(fields), headers={"Idempotency-Key": idempotency_key}
        )
        created: Contact = response.json()
        return created

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        """PATCH /contacts/{id} with only the given fields; None when the contact is gone."""
        response = self._send(
            "PATCH", f"/contacts/{contact_id}", json=dict(fields), missing_ok=True
        )
        if response.status_code == 404:
            return None
        updated: Contact = response.json()
        return updated

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
        for attempt in range(1, attempts + 1):
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
                problem, retry_after = f"{type(exc).__name__}", None
                reason = "crm_timeout" if isinstance(exc, requests.Timeout) else "crm_unreachable"
            else:
                status = response.status_code
                if status < 400 or (status == 404 and missing_ok):
                    return response
                if status not in TRANSIENT_STATUSES:
                    self._raise_permanent(what, response)
                problem, reason = f"HTTP {status}", f"crm_{status}"
                retry_after = self._parse_retry_after(response)
            if attempt == attempts:
                break
            delay = self._delay(attempt, retry_after)
            if not self._time_left_for(delay):
                raise TransientError(
                    f"{what}: {problem}; no time left in this invocation to wait {delay:.1f}s",
                    reason,
                )
            self.retries += 1
            time.sleep(delay)
        raise TransientError(f"{what}: {problem} after {attempts} attempt(s)", reason)

    @staticmethod
    def _raise_permanent(what: str, response: requests.Response) -> None:
        try:
            body = response.json()
            detail = body.get("message") or body.get("error") or response.text
        except ValueError:
            detail = response.text
        message = f"{what}: HTTP {response.status_code}: {str(detail)[:300]}"
        if response.status_code == 409 and response.request.method == "POST":
            raise ContactExists(message)
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
