"""Ordering decisions: duplicates, stale events, ties, tombstones and new lives."""

from __future__ import annotations

import pytest

from auth0_sync.events import parse_event
from auth0_sync.names import SkipReason
from auth0_sync.state import SyncState, order_key_text
from auth0_sync.sync import ordering_skip
from tests.builders import at, created, deleted, updated

pytestmark = pytest.mark.unit

USER = "auth0|65e5a1f0c2b7d94e1a3f0c11"
UPDATE = parse_event(updated(USER, at(10), event_id="evt_b"))


def applied(minutes: float, rank: int = 1, event_id: str = "evt_other") -> SyncState:
    moment = at(minutes).isoformat()
    return SyncState(USER, "c_1", last_change_time=moment, last_rank=rank, last_event_id=event_id)


def test_new_user_goes_ahead() -> None:
    assert ordering_skip(SyncState(USER), UPDATE) is None


def test_same_event_id_is_a_duplicate() -> None:
    assert ordering_skip(applied(10, event_id="evt_b"), UPDATE) is SkipReason.DUPLICATE


def test_older_change_is_stale_and_newer_goes_ahead() -> None:
    assert ordering_skip(applied(11), UPDATE) is SkipReason.STALE
    assert ordering_skip(applied(9), UPDATE) is None


def test_at_a_tie_a_create_is_older_than_an_update_and_an_update_than_a_delete() -> None:
    create = parse_event(created(USER, at(10)))
    assert ordering_skip(applied(10, rank=1), create) is SkipReason.STALE
    assert ordering_skip(applied(10, rank=0), UPDATE) is None
    assert ordering_skip(applied(10, rank=2), UPDATE) is SkipReason.STALE


def test_a_tie_of_two_updates_is_broken_by_event_id_the_same_way_in_any_order() -> None:
    assert ordering_skip(applied(10, event_id="evt_a"), UPDATE) is None
    assert ordering_skip(applied(10, event_id="evt_c"), UPDATE) is SkipReason.STALE


def tombstone(minutes: float) -> SyncState:
    delete = parse_event(deleted(USER, at(minutes)))
    tomb = applied(minutes, rank=2, event_id=delete.event_id)
    tomb.deleted_at, tomb.life_start = at(minutes).isoformat(), order_key_text(delete.order_key)
    return tomb


def test_an_event_older_than_the_tombstone_belongs_to_a_past_life() -> None:
    tomb = tombstone(20)
    assert ordering_skip(tomb, UPDATE) is SkipReason.DELETED
    assert ordering_skip(tomb, parse_event(updated(USER, at(20)))) is SkipReason.DELETED  # a tie
    assert ordering_skip(tomb, parse_event(deleted(USER, at(19)))) is SkipReason.DELETED


def test_an_event_newer_than_the_tombstone_starts_a_new_life() -> None:
    assert ordering_skip(tombstone(5), UPDATE) is None


def test_a_delete_older_than_what_was_applied_is_stale() -> None:
    # A re-signup (same social id) was applied first: the old delete must not end it.
    assert ordering_skip(applied(30), parse_event(deleted(USER, at(20)))) is SkipReason.STALE


def test_the_delete_itself_redelivered_after_a_re_signup_is_of_the_past_life() -> None:
    # The delete at 20 was applied, then a re-signup at 30; the same delete delivered again
    # is not newer than the user's last delete, so it is the past life's (not merely stale:
    # a stale delete would end the life it is older than).
    delete = parse_event(deleted(USER, at(20)))
    state = applied(30, rank=0, event_id="evt_resignup")
    state.deleted_at, state.life_start = None, order_key_text(delete.order_key)
    assert ordering_skip(state, delete) is SkipReason.DELETED
