"""One event in, one outcome out (`auth0_sync.service.SyncService`), with the sync core over
a memory CRM and a memory state store (issue 28): what is dead-lettered and with what,
what is retried, what is skipped before the core, the lease an invocation takes, the CRM
calls it counts and the one log line it writes. Expected values are written out."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from auth0_sync.dead_letter import Failure
from auth0_sync.errors import TransientError
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemoryOrgStateStore
from auth0_sync.organizations import OrganizationSync, UserLink
from auth0_sync.outcome import Outcome
from auth0_sync.service import SyncService
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from tests.builders import at, bus_event, created, deleted, updated
from tests.fakes.memory_companies import MemoryCompanies
from tests.fakes.memory_crm import Call, MemoryCrm

pytestmark = pytest.mark.unit

U = "auth0|svc28"
FUNCTION = "auth0-sync-user-events"
ORG = "org_W8cRZbK2fN7pQ4tx"


class Context:
    """Lambda's context as the service reads it (function name, time left)."""

    function_name = FUNCTION

    def __init__(self, remaining_ms: int = 30_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class Crm(MemoryCrm):
    """The memory CRM, noting the deadlines it is given; `fail` makes every call raise."""

    def __init__(self) -> None:
        super().__init__()
        self.deadlines: list[Any] = []
        self.fail: BaseException | None = None

    def set_deadline(self, remaining_ms: Any) -> None:
        self.deadlines.append(remaining_ms)

    def create_contact(self, fields: Any, idempotency_key: str) -> Any:
        if self.fail is not None:
            self.calls.append(Call("POST", None, dict(fields)))  # the request went out
            raise self.fail
        return super().create_contact(fields, idempotency_key)


class State(MemorySyncStateStore):
    """The memory store, noting the lease each acquire asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: list[float] = []

    def acquire(self, user_id: str, owner: str, lease_seconds: float) -> Any:
        self.leases.append(lease_seconds)
        return super().acquire(user_id, owner, lease_seconds)

    def acquire_if_newer(self, user_id: str, owner: str, lease_seconds: float, key: str) -> Any:
        self.leases.append(lease_seconds)
        return super().acquire_if_newer(user_id, owner, lease_seconds, key)


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, Failure]] = []

    def send_permanent(self, event: Any, failure: Failure) -> None:
        self.sent.append((event, failure))


class Organizations(OrganizationSync):
    """The organization sync, noting what the service hands it."""

    def __init__(self) -> None:
        super().__init__(MemoryCompanies(), MemoryOrgStateStore(), lambda _: UserLink(), "rest")
        self.applied: list[tuple[str, float]] = []
        self.ready: list[tuple[str, float]] = []

    def apply(self, event: OrgEvent, lease_seconds: float) -> Outcome:
        self.applied.append((event.event_id, lease_seconds))
        return Outcome("applied", "membership_set", event.event_id, str(event.event_type))

    def contact_ready(self, user_id: str, lease_seconds: float) -> int:
        self.ready.append((user_id, lease_seconds))
        return 0


class Rig:
    def __init__(self, organizations: Organizations | None = None) -> None:
        self.crm = Crm()
        self.state = State()
        config = Settings(crm_base_url="http://crm.invalid", crm_api_token="t")
        self.dead = DeadLetters()
        self.reported: list[Outcome] = []
        self.service = SyncService(
            SyncCore(config, self.crm, self.state),
            self.dead,
            on_outcome=self.reported.append,
            organizations=organizations,
        )

    def handle(self, raw: dict[str, Any], remaining_ms: int = 30_000) -> Outcome:
        return self.service.handle(raw, Context(remaining_ms))


def member_added(*, test: bool = False) -> dict[str, Any]:
    # Shaped as Auth0's organization.member.added (tests/events/organization_member_added.json).
    raw = bus_event(
        "organization.member.added",
        {"organization": {"id": ORG, "name": "acme"}, "user": {"user_id": U}},
        when=at(1),
        event_id="evt_member",
    )
    if test:
        raw["detail"]["a0purpose"] = "test"
    return raw


def test_an_applied_event_reports_its_outcome_and_the_crm_calls_it_made() -> None:
    rig = Rig()
    rig.crm.find_contacts(email="other@example.com")  # a call before the event: not counted
    outcome = rig.handle(created(U, at(0), email="ola@example.com", event_id="evt_c"))
    (contact_id,) = [c for c, f in rig.crm.contacts.items() if f["email"] == "ola@example.com"]
    expected = Outcome("applied", "created", "evt_c", "user.created", U, contact_id, 1)
    assert outcome == expected
    assert rig.reported == [expected]
    assert rig.dead.sent == []


def test_the_crm_gets_the_invocations_deadline_and_loses_it_after() -> None:
    rig = Rig()
    context = Context()
    rig.service.handle(created(U, at(0), email="ola@example.com"), context)
    assert rig.crm.deadlines == [context.get_remaining_time_in_millis, None]


def test_the_lease_is_the_invocations_time_left_plus_five_seconds() -> None:
    rig = Rig()
    rig.handle(created(U, at(0), email="ola@example.com"), remaining_ms=12_000)
    assert rig.state.leases
    assert set(rig.state.leases) == {17.0}


def test_a_bad_event_is_dead_lettered_with_its_ids_and_reported() -> None:
    rig = Rig()
    raw = created(U, at(0), email="ola@example.com", event_id="evt_bad")
    del raw["detail"]["data"]["object"]["user_id"]
    raw["detail"]["data"]["object"]["user"] = {"user_id": U}  # ids are still found
    outcome = rig.handle(raw)
    ((sent, failure),) = rig.dead.sent
    assert sent is raw
    assert (failure.error_class, failure.reason, failure.handler) == (
        "InvalidEvent",
        "invalid_event",
        FUNCTION,
    )
    assert failure.message == "detail.data.object.user_id: Field required"
    assert outcome == Outcome(
        "dead_lettered",
        "invalid_event",
        "evt_bad",
        "user.created",
        U,
        None,
        0,
        "detail.data.object.user_id: Field required",
    )
    assert rig.reported == [outcome]


def test_an_unforeseen_error_is_dead_lettered_as_internal_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    rig.crm.fail = ZeroDivisionError("boom")
    with caplog.at_level(logging.INFO):
        outcome = rig.handle(created(U, at(0), email="ola@example.com", event_id="evt_x"))
    ((_, failure),) = rig.dead.sent
    assert (failure.error_class, failure.reason, failure.message) == (
        "InternalError",
        "internal_error",
        "ZeroDivisionError (see the function's log)",
    )
    assert (outcome.status, outcome.reason, outcome.crm_calls) == (
        "dead_lettered",
        "internal_error",
        1,
    )
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["unexpected error"]
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is ZeroDivisionError
    assert (errors[0].event_id, errors[0].user_id) == ("evt_x", U)  # type: ignore[attr-defined]
    assert rig.crm.deadlines[-1] is None


def test_a_transient_failure_is_raised_for_a_retry_and_nothing_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    rig.crm.fail = TransientError("crm POST /contacts: HTTP 503", "crm_503")
    raw = created(U, at(0), email="ola@example.com", event_id="evt_t")
    with caplog.at_level(logging.INFO), pytest.raises(TransientError):
        rig.handle(raw)
    assert (rig.dead.sent, rig.reported) == ([], [])
    assert rig.crm.deadlines[-1] is None
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "transient failure; the event will be retried"
    assert (warning.event_id, warning.reason, warning.error) == (  # type: ignore[attr-defined]
        "evt_t",
        "crm_503",
        "crm POST /contacts: HTTP 503",
    )


def test_each_outcome_is_logged_once_with_ids_and_its_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    raw = created(U, at(0), email="ola@example.com", event_id="evt_bad")
    raw["detail"]["data"]["object"]["user_id"] = ""
    with caplog.at_level(logging.INFO):
        rig.handle(raw)
    (line,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert line.getMessage() == "event dead_lettered"
    assert (line.status, line.reason, line.event_id) == (  # type: ignore[attr-defined]
        "dead_lettered",
        "invalid_event",
        "evt_bad",
    )
    assert line.detail.startswith("detail.data.object.user_id: ")  # type: ignore[attr-defined]
    assert not hasattr(line, "contact_id")  # None values are left out


def test_an_event_type_we_do_not_handle_is_skipped_without_a_user() -> None:
    rig = Rig()
    raw = bus_event("user.teleported", {"user_id": U}, when=at(0), event_id="evt_u")
    assert rig.handle(raw) == Outcome("skipped", "unknown_type", "evt_u", "user.teleported")
    assert (rig.crm.calls, rig.state.leases) == ([], [])


def test_a_test_event_writes_nothing() -> None:
    rig = Rig(Organizations())
    raw = updated(U, at(0), email="ola@example.com", event_id="evt_test")
    raw["detail"]["a0purpose"] = "test"
    outcome = rig.handle(raw)
    assert outcome == Outcome("skipped", "test_event", "evt_test", "user.updated", U)
    assert (rig.crm.calls, rig.state.leases) == ([], [])


def test_organization_events_are_skipped_when_organizations_are_not_synced() -> None:
    rig = Rig()
    outcome = rig.handle(member_added())
    assert outcome == Outcome(
        "skipped", "organizations_unsupported", "evt_member", "organization.member.added", U
    )


def test_an_organization_event_goes_to_the_organization_sync_with_the_lease() -> None:
    organizations = Organizations()
    rig = Rig(organizations)
    outcome = rig.handle(member_added(), remaining_ms=20_000)
    assert organizations.applied == [("evt_member", 25.0)]
    assert (outcome.status, outcome.reason) == ("applied", "membership_set")


def test_an_organization_test_event_writes_nothing() -> None:
    organizations = Organizations()
    rig = Rig(organizations)
    outcome = rig.handle(member_added(test=True))
    assert outcome == Outcome("skipped", "test_event", "evt_member", "organization.member.added")
    assert organizations.applied == []


def test_a_users_contact_is_announced_to_the_memberships_waiting_unless_deleted() -> None:
    organizations = Organizations()
    rig = Rig(organizations)
    rig.handle(created(U, at(0), email="ola@example.com"), remaining_ms=10_000)
    assert organizations.ready == [(U, 15.0)]
    rig.handle(deleted(U, at(5)))
    assert organizations.ready == [(U, 15.0)]
