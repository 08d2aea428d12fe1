"""Ordering decisions: duplicates, stale events, tombstones."""

from __future__ import annotations

import pytest

from auth0_sync.events import Auth0BusEvent, parse_event
from auth0_sync.names import SkipReason
from auth0_sync.state import SyncState
from auth0_sync.sync import ordering_skip
from tests.conftest import load_event

pytestmark = pytest.mark.unit

UPDATE = parse_event(load_event("user_updated"))  # updated_at 2026-03-04T10:15:30.900Z
DELETE = parse_event(load_event("user_deleted_minimal"))  # deleted_at 2026-03-05T12:00:00Z
USER = UPDATE.user_id


def state(**values: str) -> SyncState:
    return SyncState(user_id=USER, contact_id="c_1", **values)


def test_new_user_goes_ahead() -> None:
    assert ordering_skip(SyncState(USER), UPDATE) is None


def test_same_event_id_is_a_duplicate() -> None:
    assert ordering_skip(state(last_event_id=UPDATE.event_id), UPDATE) is SkipReason.DUPLICATE


def test_older_change_is_stale_and_newer_or_equal_goes_ahead() -> None:
    assert (
        ordering_skip(state(last_change_time="2026-03-04T10:15:31+00:00"), UPDATE)
        is SkipReason.STALE
    )
    assert ordering_skip(state(last_change_time="2026-03-04T10:15:30.900000+00:00"), UPDATE) is None
    assert ordering_skip(state(last_change_time="2026-03-04T10:00:00+00:00"), UPDATE) is None


@pytest.mark.parametrize("event", [UPDATE, parse_event(load_event("user_created"))])
def test_tombstoned_user_is_never_resurrected(event: Auth0BusEvent) -> None:
    tomb = state(
        deleted_at="2026-03-01T00:00:00+00:00", last_change_time="2026-03-01T00:00:00+00:00"
    )
    # Even an event dated after the delete does not bring the contact back.
    assert ordering_skip(tomb, event) is SkipReason.DELETED


def test_delete_applies_even_after_a_later_dated_update() -> None:
    assert ordering_skip(state(last_change_time="2026-03-09T00:00:00+00:00"), DELETE) is None


def test_second_delete_is_skipped() -> None:
    tomb = state(deleted_at="2026-03-05T12:00:00+00:00", last_event_id="evt_other")
    assert ordering_skip(tomb, DELETE) is SkipReason.DELETED
