"""Requests to the reference CRM over HTTP, shared by its test files."""

from __future__ import annotations

from typing import Any

import requests

from auth0_sync_cli.crm_server import CrmServer


def call(crm: CrmServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    """One request to `crm` with its bearer token (unless the test passes its own headers)."""
    headers = {"Authorization": f"Bearer {crm.token}", **kwargs.pop("headers", {})}
    return requests.request(method, crm.base_url + path, headers=headers, timeout=5, **kwargs)


def create(crm: CrmServer, **fields: Any) -> dict[str, Any]:
    """A contact made through `POST /contacts` (which must answer 201)."""
    response = call(crm, "POST", "/contacts", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
