"""The demo's step line says why events were dead-lettered, so a healthy CRM's step that
still dead-letters (a lifecycle's refusal) says so instead of looking like a CRM fault."""

from __future__ import annotations

import pytest

from auth0_sync.outcome import Outcome
from auth0_sync_cli.demo import _outcome_line
from auth0_sync_cli.tally import Tally

pytestmark = pytest.mark.unit


def test_a_steps_dead_letters_come_with_their_reasons() -> None:
    tally = Tally()
    tally.add(Outcome("applied", "created", crm_calls=2))
    tally.add(Outcome("dead_lettered", "owned_by_other", crm_calls=1))
    tally.add(Outcome("dead_lettered", "owned_by_other", crm_calls=1))

    assert _outcome_line(tally, 1.25) == (
        "3 events: 1 applied, 0 skipped, 2 dead-lettered (owned_by_other 2), 4 CRM calls (1.2s)"
    )


def test_a_step_without_dead_letters_names_no_reason() -> None:
    tally = Tally()
    tally.add(Outcome("skipped", "unchanged"))
    assert _outcome_line(tally, 0.5) == (
        "1 events: 0 applied, 1 skipped, 0 dead-lettered, 0 CRM calls (0.5s)"
    )
