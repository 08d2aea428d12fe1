"""`replay --dry-run`: the same service, with a CRM adapter that only reads (it records the
POST/PATCH it would send) and a state store that never writes; nothing is deleted.

The writes are recorded below the destination's adapter, at its HTTP session: the dry run
shows the request the destination would get (HubSpot's `properties`, Salesforce's record
and upsert path, the contract's contact), not the sync's generic fields."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from auth0_sync.crm import Contact, Crm, RemainingMillis
from auth0_sync.dead_letter import Failure
from auth0_sync.destinations import Archiving, Erasing
from auth0_sync.destinations.factory import build_crm
from auth0_sync.errors import ContactExists
from auth0_sync.runtime import destination_secret
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore, Settled, SyncState, Unchanged
from auth0_sync.sync import Outcome, StateStore, SyncCore
from auth0_sync_cli.runner import LocalContext, function_name_for


@dataclass(frozen=True)
class PlannedCall:
    method: str
    path: str
    body: dict[str, Any]

    def render(self) -> str:
        return f"{self.method} {self.path} {json.dumps(self.body, sort_keys=True)}"


class RecordingSession(requests.Session):
    """The adapter's HTTP session: reads go out; while `recording`, a write (a request with
    a JSON body that is not a GET) is kept and answered here, never sent. A search by POST
    or a token request outside a write goes out as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.recorded: list[PlannedCall] | None = None

    @contextmanager
    def recording(self, into: list[PlannedCall]) -> Iterator[None]:
        self.recorded = into
        try:
            yield
        finally:
            self.recorded = None

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        body = kwargs.get("json")
        # A DELETE (HubSpot's archive) writes without a body.
        if self.recorded is None or verb in ("GET", "HEAD") or (body is None and verb != "DELETE"):
            return super().request(method, url, *args, **kwargs)
        path = urlsplit(url.decode() if isinstance(url, bytes) else url).path
        self.recorded.append(PlannedCall(verb, path, dict(body or {})))
        return _answer(verb, path, dict(body or {}))


def _answer(verb: str, path: str, body: dict[str, Any]) -> requests.Response:
    """A success as a destination gives it, enough for its adapter to read: the id (a new
    one for a create), the body's fields."""
    record_id = "(new)" if verb == "POST" else path.rstrip("/").rsplit("/", 1)[-1]
    response = requests.Response()
    response.status_code = 201 if verb == "POST" else 200
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({**body, "id": record_id, "success": True}).encode()
    return response


class PlanningCrm:
    """Reads through the destination's adapter; records the create/update the sync would
    send, as the destination would get it (with `session`; else in the generic contract's
    terms), answering as the destination would."""

    def __init__(self, inner: Crm, session: RecordingSession | None = None) -> None:
        self.inner = inner
        self.session = session
        self.planned: list[PlannedCall] = []
        self._not_sent = 0

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        return self.inner.find_contacts(email=email, auth0_user_id=auth0_user_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self.inner.get_contact(contact_id)

    def calls_made(self) -> int:
        """The requests sent: the recorded writes were not."""
        return self.inner.calls_made() - self._not_sent

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        self.inner.set_deadline(remaining_ms)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        email = fields.get("email")
        # A destination answers 409 to a create whose email is taken; the sync then links.
        if isinstance(email, str) and email and self.find_contacts(email=email):
            raise ContactExists("crm POST /contacts: HTTP 409: a contact has this email (dry run)")
        self._record(lambda: self.inner.create_contact(fields, idempotency_key), "POST", fields)
        return {"id": "(new)", **fields}

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        current = self.get_contact(contact_id)
        if current is None:
            return None
        self._record(
            lambda: self.inner.update_contact(contact_id, fields),
            "PATCH",
            fields,
            f"/contacts/{contact_id}",
        )
        return {**current, **fields}

    def archive_contact(self, contact_id: str) -> bool:
        """DELETE_POLICY=archive (HubSpot): recorded, never sent."""
        if not isinstance(self.inner, Archiving):
            raise TypeError(f"{type(self.inner).__name__} cannot archive a contact")
        return self._record_removal(contact_id, "DELETE", self.inner.archive_contact)

    def erase_contact(self, contact_id: str) -> bool:
        """DELETE_POLICY=erase (HubSpot's GDPR delete): recorded, never sent."""
        if not isinstance(self.inner, Erasing):
            raise TypeError(f"{type(self.inner).__name__} cannot erase a contact")
        return self._record_removal(contact_id, "POST", self.inner.erase_contact)

    def _record_removal(self, contact_id: str, method: str, remove: Any) -> bool:
        if self.get_contact(contact_id) is None:
            return False
        self._record(lambda: remove(contact_id), method, {}, f"/contacts/{contact_id}")
        return True

    def _record(
        self, write: Any, method: str, fields: Mapping[str, Any], path: str = "/contacts"
    ) -> None:
        if self.session is None:
            self.planned.append(PlannedCall(method, path, dict(fields)))
            return
        before = len(self.planned)
        with self.session.recording(self.planned):
            write()
        self._not_sent += len(self.planned) - before


class ReadOnlyState:
    """The per-user state as stored, without taking a lease or writing anything back."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> SyncState:
        del owner, lease_seconds
        return self.inner.get(user_id) or SyncState(user_id)

    def commit(self, state: SyncState, owner: str) -> None:
        del state, owner

    def release(self, user_id: str, owner: str) -> None:
        del user_id, owner

    def get(self, user_id: str) -> SyncState | None:
        return self.inner.get(user_id)

    def claim_contact(self, contact_id: str, user_id: str, expected_owner: str | None) -> bool:
        del contact_id, user_id, expected_owner
        return True

    def mark_linked(self, secondary_id: str, primary_id: str, at: str | None = None) -> None:
        del secondary_id, primary_id, at

    def record_unchanged(self, user_id: str, seen: Unchanged) -> SyncState | None:
        del seen  # a dry run records nothing: the lease path plans the rest
        return self.inner.get(user_id) or SyncState(user_id)

    def acquire_if_newer(
        self, user_id: str, owner: str, lease_seconds: float, key: str
    ) -> SyncState | Settled:
        del key  # the lease path decides on the same state, and plans what it would write
        return self.acquire(user_id, owner, lease_seconds)


class KeptFailures:
    """Dead letters of a dry run: kept in memory, never sent."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def send_permanent(self, event: Any, failure: Failure) -> None:
        del event
        self.failures.append(failure)


class Planner:
    """What replaying an event would do, computed by the real service without writing."""

    def __init__(
        self, settings: Settings, state: StateStore | None = None, timeout: float = 30.0
    ) -> None:
        session = RecordingSession()
        inner = build_crm(settings, destination_secret(settings), session=session)
        self.crm = PlanningCrm(inner, session)
        store = ReadOnlyState(state or DynamoSyncStateStore(settings.state_table))
        # The state, read only, turns an event already applied into a skip (duplicate,
        # stale or deleted) with no CRM change.
        self.service = SyncService(SyncCore(settings, self.crm, store), KeptFailures())
        self.timeout = timeout

    def plan(self, raw: Any) -> tuple[Outcome, list[str]]:
        """The outcome the replay would have and the CRM writes it would make."""
        self.crm.planned = []
        outcome = self.service.handle(raw, LocalContext(function_name_for(raw), self.timeout))
        return outcome, [call.render() for call in self.crm.planned]
