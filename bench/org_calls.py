"""CRM calls per organization event on a mixed, shuffled stream with a fifth duplicated.

    PYTHONPATH=functions:. python bench/org_calls.py [seed] [rest|hubspot|salesforce]

Runs the sync service in memory against the reference CRM (contract 1.2), or the fake
HubSpot / the fake Salesforce org (Contacts to Multiple Accounts), on the history of
tests/integration/test_organizations_process.generate (40 users in 5 organizations).
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter
from typing import Any

from auth0_sync.names import CrmType, Env
from auth0_sync.runtime import build_service
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.fakes.hubspot import FakeHubSpot
from auth0_sync_cli.fakes.salesforce import CLIENT_ID, CLIENT_SECRET, FakeSalesforce
from auth0_sync_cli.runner import LocalContext
from tests.integration.test_organizations_process import generate


def main(seed: int, crm_type: CrmType = CrmType.REST) -> None:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    generated = generate(seed, n_orgs=5, n_users=40, steps=400)
    rng = random.Random(seed)
    stream = generated.events + rng.sample(generated.events, len(generated.events) // 5)
    rng.shuffle(stream)
    server: Any
    env: dict[str, str] = {Env.CRM_TYPE: str(crm_type)}
    if crm_type is CrmType.HUBSPOT:
        server = FakeHubSpot(window_calls=100_000)
        env[Env.CRM_API_TOKEN] = server.token
    elif crm_type is CrmType.SALESFORCE:
        server = FakeSalesforce(multiple_accounts=True)
        secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        env[Env.CRM_API_TOKEN] = json.dumps(secret)
        env[Env.SALESFORCE_MULTIPLE_ACCOUNTS] = "true"
    else:
        server = CrmServer()
        env[Env.CRM_API_TOKEN] = server.token
    with server as crm:
        settings = Settings.from_env({**env, Env.CRM_BASE_URL: crm.base_url})
        service = build_service(settings, state=MemorySyncStateStore())
        calls: Counter[str] = Counter()
        count: Counter[str] = Counter()
        for raw in stream:
            kind = "organization" if raw["detail"]["type"].startswith("organization.") else "user"
            outcome = service.handle(raw, LocalContext("bench"))
            calls[kind] += outcome.crm_calls
            count[kind] += 1
    for kind in ("organization", "user"):
        print(
            f"{crm_type} {kind}: {count[kind]} events, {calls[kind]} CRM calls, "
            f"{calls[kind] / count[kind]:.2f} per event"
        )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 24,
        CrmType(sys.argv[2]) if len(sys.argv) > 2 else CrmType.REST,
    )
