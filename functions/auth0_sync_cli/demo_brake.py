"""The demo's brake step: a planted mass deactivation, stopped before anything is written.

A wrong export (another tenant's, with one user none of the CRM's contacts carries) given
to `auth0-sync backfill --sweep` would deactivate every contact the sync wrote. The demo
asks what the command asks before its first write (`auth0_sync_cli.backfill.brake`) and
shows the one line the command would stop with. It reads the CRM's listing and writes
nothing, so the rest of the demo's accounting is untouched.
"""

from __future__ import annotations

import json
import os

from auth0_sync.brake import DeactivationLimit, Verdict
from auth0_sync.destinations import Listing
from auth0_sync_cli.backfill.brake import sweep_verdict

# One user of another tenant: no contact of the demo's CRM carries its id.
PLANTED_USER = {
    "user_id": "auth0|another-tenant-0001",
    "email": "someone@another-tenant.example",
    "updated_at": "2026-01-01T00:00:00.000Z",
}


def planted_mass_deactivation(workdir: str, listing: Listing) -> Verdict:
    """What `backfill --export WRONG --sweep` would deactivate, under the default
    `DEACTIVATION_LIMIT` (a share of the contacts); nothing is written."""
    path = os.path.join(workdir, "users-wrong-tenant.json")
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps(PLANTED_USER) + "\n")
    return sweep_verdict(path, listing, DeactivationLimit.from_env({}), None)


def brake_lines(verdict: Verdict) -> list[str]:
    """The step's lines: what was planted, and the command's own one-line explanation."""
    return [
        "a wrong export (another tenant's: 1 user) given to `auth0-sync backfill --sweep`",
        ("stopped: " if verdict.stopped else "not stopped: ") + verdict.message("backfill"),
    ]
