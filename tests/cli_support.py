"""What the CLI's integration tests share: the environment that points the CLI at a fake
Auth0 tenant, and an edit made by hand in the reference CRM (not by the sync)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from tests.fakes.auth0_mgmt import FakeAuth0


def auth0_env(fake: FakeAuth0, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Management API of `fake`, with a token it issued."""
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.setenv(Env.AUTH0_MGMT_TOKEN, fake.issue_token())


def hand(crm: CrmServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """An edit made by hand in the CRM; its answer (None when it has no body)."""
    response = requests.request(
        method,
        crm.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {crm.token}"},
        timeout=5,
    )
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else None
