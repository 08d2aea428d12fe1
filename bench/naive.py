"""The baseline: the naive flow of Auth0's own correlation guide, ported from its JavaScript.

For every event: find the contact (`app_metadata.crm_contact_id`, else `GET /contacts?email=`),
then PATCH it; no state, no ordering, no de-duplication, HTTP errors ignored (the guide's
`fetch` does not throw on them). The guide leaves `handleUserCreated` to the reader and says
"decide whether to create the record": here it looks the contact up like the others and
PATCHes it, or POSTs a new one carrying the Auth0 user id.

Two choices keep the comparison about the flow, not the payload: bodies carry the same
mapped fields as ours (the guide sends email, name and phone), and the created contact
carries `auth0_user_id`, so `reconcile` can find it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests

from auth0_sync.mapping import get_path, present_fields
from auth0_sync.names import EventType
from auth0_sync.settings import DEFAULT_FIELD_MAPPING


class NaiveFlow:
    """One webhook handler per the guide: route on `type`, look up, then PATCH."""

    def __init__(self, base_url: str, token: str, *, timeout_seconds: float = 10.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds
        # A kept-alive session is fair to the baseline: the guide's runtime pools too.
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self.calls: Counter[str] = Counter()

    def handle(self, raw: dict[str, Any]) -> None:
        """The guide's router: `switch (type)` over `data.object`."""
        detail = raw.get("detail", {})
        event_type, user = detail.get("type"), detail.get("data", {}).get("object", {})
        if event_type == EventType.USER_CREATED:
            self._created(user)
        elif event_type == EventType.USER_UPDATED:
            self._updated(user)
        elif event_type == EventType.USER_DELETED:
            self._deleted(user)
        # default: "Unhandled event type" is logged, nothing else.

    def _find(self, user: dict[str, Any]) -> str | None:
        """findCrmContact: the id in app_metadata, else the first contact with the email."""
        external = get_path(user, "app_metadata.crm_contact_id")
        if external:
            return str(external)
        # encodeURIComponent(undefined) is "undefined": the guide still sends the request.
        email = user.get("email")
        found = self._send("GET", "/contacts", params={"email": str(email or "undefined")})
        if found.ok:
            results = found.json()
            return str(results[0]["id"]) if results else None
        return None

    def _fields(self, user: dict[str, Any]) -> dict[str, Any]:
        return present_fields(user, DEFAULT_FIELD_MAPPING)

    def _created(self, user: dict[str, Any]) -> None:
        body = {**self._fields(user), "auth0_user_id": user.get("user_id")}
        contact_id = self._find(user)
        if contact_id is None:
            self._send("POST", "/contacts", json=body)
        else:
            self._send("PATCH", f"/contacts/{contact_id}", json=body)

    def _updated(self, user: dict[str, Any]) -> None:
        contact_id = self._find(user)
        if contact_id is None:
            return  # "No CRM contact found for user ..., skipping."
        self._send("PATCH", f"/contacts/{contact_id}", json=self._fields(user))

    def _deleted(self, user: dict[str, Any]) -> None:
        contact_id = self._find(user)
        if contact_id is None:
            return
        self._send("PATCH", f"/contacts/{contact_id}", json={"status": "deactivated"})

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.calls[method] += 1
        return self._session.request(method, self._base_url + path, timeout=self._timeout, **kwargs)
