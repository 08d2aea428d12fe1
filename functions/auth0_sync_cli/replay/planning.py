"""`replay --dry-run`: the same service, with a CRM adapter that only reads (it records the
POST/PATCH it would send) and a state store that never writes; nothing is deleted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auth0_sync.crm import Contact, Crm, RemainingMillis
from auth0_sync.dead_letter import Failure
from auth0_sync.errors import ContactExists
from auth0_sync.runtime import build_crm_client
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


class PlanningCrm:
    """Reads through the destination's adapter; records the create/update the sync would
    send (in the generic contract's terms), answering as the destination would."""

    def __init__(self, inner: Crm) -> None:
        self.inner = inner
        self.planned: list[PlannedCall] = []

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        return self.inner.find_contacts(email=email, auth0_user_id=auth0_user_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self.inner.get_contact(contact_id)

    def calls_made(self) -> int:
        return self.inner.calls_made()

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        self.inner.set_deadline(remaining_ms)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        del idempotency_key
        email = fields.get("email")
        # A destination answers 409 to a create whose email is taken; the sync then links.
        if isinstance(email, str) and email and self.find_contacts(email=email):
            raise ContactExists("crm POST /contacts: HTTP 409: a contact has this email (dry run)")
        self.planned.append(PlannedCall("POST", "/contacts", dict(fields)))
        return {"id": "(new)", **fields}

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        current = self.get_contact(contact_id)
        if current is None:
            return None
        self.planned.append(PlannedCall("PATCH", f"/contacts/{contact_id}", dict(fields)))
        return {**current, **fields}


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
        self.crm = PlanningCrm(build_crm_client(settings))
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
