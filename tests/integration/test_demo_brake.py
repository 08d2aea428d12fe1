"""The demo's brake step (`auth0_sync_cli.demo_brake`) against the reference CRM over HTTP:
a wrong export planted for `backfill --sweep` is stopped before any write, with the
command's one-line explanation; the CRM is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.demo_brake import brake_lines, planted_mass_deactivation

pytestmark = pytest.mark.integration


def test_the_planted_mass_deactivation_is_stopped_and_explained(
    crm: CrmServer, tmp_path: Path
) -> None:
    for n in range(4):
        crm.seed_contact(email=f"u{n}@example.com", auth0_user_id=f"auth0|u{n}", status="active")
    crm.seed_contact(email="sales@example.com", status="active")  # no Auth0 user: not swept
    before = crm.contacts()
    writes = {m: crm.stats()["by_method"][m] for m in ("POST", "PATCH")}

    verdict = planted_mass_deactivation(
        str(tmp_path), RestCrmClient(crm.base_url, lambda: crm.token)
    )

    # Every contact the sync wrote would go; the default limit is 10% of 5 contacts, so 1.
    assert (verdict.planned, verdict.contacts, verdict.allowed) == (4, 5, 1)
    assert verdict.stopped
    [planted, explained] = brake_lines(verdict)
    assert "backfill --sweep" in planted
    assert explained.startswith("stopped: backfill would deactivate 4 contact(s) of 5")
    assert "nothing was written" in explained
    assert "--allow-deactivations 4" in explained
    assert crm.contacts() == before
    assert {m: crm.stats()["by_method"][m] for m in ("POST", "PATCH")} == writes
