"""Requests to the reference CRM over HTTP, shared by its test files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest

from auth0_sync_cli.crm_server import CrmServer


class TimeoutsSeen(HTTPAdapter):
    """requests' own transport adapter (mounted on a real session: requests' documented
    extension point, "Transport Adapters" in its advanced usage guide) that notes the
    timeout each request is sent with, then sends it as usual."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | tuple[float, float] | tuple[float, None] | None] = []

    def session(self) -> requests.Session:
        """A session whose http:// requests go through this adapter."""
        session = requests.Session()
        session.mount("http://", self)
        return session

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.timeouts.append(timeout)
        return super().send(request, stream, timeout, verify, cert, proxies)


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
