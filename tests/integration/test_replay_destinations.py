"""`replay --dry-run` plans through the configured destination's adapter: it reads the
vendor, writes nothing, and says what it would create or update."""

from __future__ import annotations

import pytest

from auth0_sync.names import CrmType
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.replay.planning import PlannedCall, Planner
from tests.builders import at, created

pytestmark = pytest.mark.integration


def test_a_dry_run_against_hubspot_reads_hubspot_and_writes_nothing() -> None:
    with FakeHubSpot() as fake:
        taken = fake.seed(email="taken@example.com", firstname="Old")
        settings = Settings(crm_type=CrmType.HUBSPOT, crm_base_url=fake.base_url,
                            crm_api_token=fake.token)  # fmt: skip
        planner = Planner(settings, state=MemorySyncStateStore(), timeout=5.0)

        _, new = planner.plan(created("auth0|n1", at(0), email="new@example.com"))
        _, link = planner.plan(created("auth0|n2", at(0), email="taken@example.com"))

        assert new == [
            PlannedCall(
                "POST",
                "/contacts",
                {
                    "email": "new@example.com",
                    "auth0_user_id": "auth0|n1",
                    "status": "active",
                    "source_updated_at": "2026-03-01T09:00:00.000000+00:00",
                },
            ).render()
        ]
        assert [c.split(" {")[0] for c in link] == [f"PATCH /contacts/{taken}"]
        assert fake.count("POST", "/crm/v3/objects/contacts") == 0
        assert fake.count("PATCH", "/crm/v3/objects/contacts/") == 0
        assert len(fake.contacts()) == 1
