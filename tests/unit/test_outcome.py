"""An outcome as a handler returns it (JSON) and as the replay reads it back (issue 28)."""

from __future__ import annotations

import pytest

from auth0_sync.outcome import Outcome

pytestmark = pytest.mark.unit


def test_an_outcome_is_a_plain_dict_of_every_field() -> None:
    outcome = Outcome("applied", "created", "evt_1", "user.created", "auth0|u1", "c_7", 2, None)
    assert outcome.to_dict() == {
        "status": "applied",
        "reason": "created",
        "event_id": "evt_1",
        "event_type": "user.created",
        "user_id": "auth0|u1",
        "contact_id": "c_7",
        "crm_calls": 2,
        "message": None,
    }


def test_an_answer_is_read_back_and_fields_of_a_newer_handler_are_ignored() -> None:
    # A Lambda's answer (the replay reads it) may carry fields this version does not know.
    answer = {
        "status": "skipped",
        "reason": "stale",
        "event_id": "evt_2",
        "crm_calls": 0,
        "added_by_a_newer_version": True,
    }
    assert Outcome.from_dict(answer) == Outcome("skipped", "stale", event_id="evt_2")
