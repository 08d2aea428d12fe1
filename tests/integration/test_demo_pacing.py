"""The demo's "CRM healthy" step against HubSpot's rolling limit: the demo's invocations
are long enough to wait out the window the CRM declares, and the client counts the calls
another process of the account made (the backfill's), so a healthy CRM dead-letters
nothing and answers no 429. The window is scaled down (0.5 s instead of HubSpot's 10 s)
with the demo's base timeout, so the relation the demo depends on holds: the window is
longer than the base timeout."""

from __future__ import annotations

import pytest
import requests

from auth0_sync.dead_letter import MemoryDeadLetterQueue
from auth0_sync.destinations.hubspot import HubSpotCrm
from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import Outcome
from auth0_sync_cli.demo import demo_runner
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from tests.builders import at, created

pytestmark = pytest.mark.integration

WINDOW_CALLS = 4
WINDOW_MS = 500
BASE_TIMEOUT = 0.2  # shorter than the window, as the demo's 4 s is shorter than 10 s
MARGIN_MS = 50


def test_a_healthy_step_waits_out_the_window_and_dead_letters_nothing() -> None:
    with FakeHubSpot(window_calls=WINDOW_CALLS, window_ms=WINDOW_MS) as hubspot:
        # Another process of the account (the demo's backfill) has just spent most of the
        # window: the answers' X-HubSpot-RateLimit-Remaining say so.
        other = {"Authorization": f"Bearer {hubspot.token}"}
        url = f"{hubspot.base_url}/crm/v3/objects/contacts"
        for _ in range(WINDOW_CALLS - 1):
            assert requests.get(url, headers=other, timeout=5).status_code == 200

        crm = HubSpotCrm(
            hubspot.base_url, lambda: hubspot.token, backoff_base=0.01, margin_ms=MARGIN_MS
        )
        settings = Settings(
            crm_type=CrmType.HUBSPOT, crm_base_url=hubspot.base_url, crm_api_token="unused"
        )
        dlq = MemoryDeadLetterQueue()
        outcomes: list[Outcome] = []
        runner = demo_runner(
            settings, crm, MemorySyncStateStore(), dlq, outcomes.append, BASE_TIMEOUT
        )
        for n in range(3):
            runner.run(created(f"auth0|u{n}", at(n), email=f"u{n}@example.com"))

        assert dlq.messages == []
        assert [o.status for o in outcomes] == ["applied"] * 3
        assert hubspot.throttled["TEN_SECONDLY_ROLLING"] == 0
        assert len(hubspot.contacts()) == 3
