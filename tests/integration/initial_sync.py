"""The tenant and CRM of the initial-sync tests: users that existed before the stream, and
a CRM that already holds a few contacts (two match users by email, one of them with stale
fields, one belongs to a user since deleted from Auth0)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from auth0_sync_cli.crm_server import CrmServer

UPDATED = "2026-02-10T08:00:00.000Z"


def user(n: int, *, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """An exported user (the attributes a users export with the default mapping holds)."""
    base: dict[str, Any] = {
        "user_id": f"auth0|u{n:03d}",
        "email": f"user{n}@example.com",
        "name": name or f"User {n}",
        "given_name": "User",
        "family_name": f"Number{n}",
        "created_at": "2025-06-01T10:00:00.000Z",
        "updated_at": UPDATED,
    }
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


USERS = [
    user(1),  # matches a pre-existing contact by email, in step
    user(2, name="Bea Stale-No-More"),  # matches by email, the contact's name is stale
    user(3),  # no contact yet
    user(4, phone_number="+441234567"),  # no contact yet
]
GONE_USER = "auth0|gone"


def seed_crm(crm: CrmServer) -> dict[str, str]:
    """The contacts from before the stream; their ids by role."""
    in_step = crm.store.seed(
        {
            "email": "USER1@example.com",
            "name": "User 1",
            "given_name": "User",
            "family_name": "Number1",
        }
    )
    stale = crm.store.seed(
        {"email": "user2@example.com", "name": "Bea Old", "given_name": "User", "phone": "+1"}
    )
    gone = crm.store.seed({"email": "gone@example.com", "name": "Gone", "auth0_user_id": GONE_USER})
    return {"in_step": in_step["id"], "stale": stale["id"], "gone": gone["id"]}


def write_export(path: Path, users: Iterable[dict[str, Any]], *, gzipped: bool = True) -> Path:
    """An NDJSON users export, as Auth0's export job writes it (one user per line)."""
    text = "".join(json.dumps(u) + "\n" for u in users)
    if gzipped:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def contacts(crm: CrmServer) -> list[dict[str, Any]]:
    """Every contact, read back from the CRM's own store."""
    return crm.store.all()


def contact_of(crm: CrmServer, user_id: str) -> dict[str, Any]:
    found = [c for c in contacts(crm) if c.get("auth0_user_id") == user_id]
    assert len(found) == 1, (user_id, found)
    return found[0]


def patch(crm: CrmServer, contact_id: str, fields: dict[str, Any]) -> None:
    """An edit made by hand in the CRM (not by the sync)."""
    response = requests.patch(
        f"{crm.base_url}/contacts/{contact_id}",
        json=fields,
        headers={"Authorization": f"Bearer {crm.token}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
