"""Issue 23's lifecycles through `auth0-sync process` against the reference CRM, with and
without unique emails: a user without an email, an unverified signup beside the address's
verified owner, a blocked user, a link then an unlink. The stream is delivered twice over
in a shuffled order; the expected contacts are written out here from the Auth0 histories.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from tests.builders import at, created, deleted, identities, updated
from tests.integration.test_process_cli import run_json

pytestmark = pytest.mark.integration

SMS = "sms|6a7b8c9d0e1f2a3b4c5d6e7f"
FAKE, REAL = "auth0|68d0e1f2a3b4c5d6e7f80912", "google-oauth2|140055006600"
BLOCKY = "auth0|69e0f1a2b3c4d5e6f7a80913"
PRIMARY, SECONDARY = "auth0|6af0a1b2c3d4e5f6a7b80914", "github|4455667"
BYSTANDER = "auth0|6b00b1c2d3e4f5a6b7c80915"


def histories() -> list[dict[str, Any]]:
    return [
        # Passwordless SMS: no email, ever.
        created(SMS, at(0), phone_number="+15550601", phone_verified=True),
        updated(SMS, at(1), phone_number="+15550601", phone_verified=True, name="Sol"),
        # An unverified database signup with the address of an imported contact; its
        # verified owner signs up with a social login.
        created(FAKE, at(0), email="kim@example.com", email_verified=False, name="Kim?"),
        created(REAL, at(2), email="kim@example.com", email_verified=True, name="Kim Real"),
        # Blocked, edited while blocked.
        created(BLOCKY, at(0), email="bo@example.com", name="Bo"),
        updated(BLOCKY, at(1), email="bo@example.com", name="Bo", blocked=True),
        updated(BLOCKY, at(2), email="bo@example.com", name="Bo B", blocked=True),
        # Linked, then unlinked: the secondary goes on with an address of its own.
        created(SECONDARY, at(0), email="dee@example.com", email_verified=True, name="Dee G"),
        updated(
            PRIMARY, at(2), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY, SECONDARY),
        ),
        deleted(SECONDARY, at(2)),
        updated(
            PRIMARY, at(4), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY),
        ),
        updated(SECONDARY, at(5), email="dee.g@example.com", email_verified=True, name="Dee Gh"),
    ]  # fmt: skip


@pytest.fixture(params=[False, True], ids=["plain", "unique-emails"])
def lifecycle_crm(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CrmServer]:
    with CrmServer(unique_emails=request.param) as server:
        monkeypatch.setenv(Env.CRM_BASE_URL, server.base_url)
        monkeypatch.setenv(Env.CRM_API_TOKEN, server.token)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        workdir = tmp_path / "cwd"
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        yield server


@pytest.mark.parametrize("state", ["memory", "aws"])
def test_the_new_lifecycles_end_at_the_auth0_truth(
    lifecycle_crm: CrmServer,
    state: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if state == "aws":
        aws: LocalResources = request.getfixturevalue("aws")
        for name, value in aws.environment().items():
            if name not in ("AWS_ENDPOINT_URL", Env.CRM_BASE_URL, Env.CRM_API_TOKEN):
                monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bystander = lifecycle_crm.seed_contact(
        email="by@example.com", name="By Stander", auth0_user_id=BYSTANDER, status="active"
    )
    kim = lifecycle_crm.seed_contact(email="kim@example.com", name="Kim (imported)")
    stream = histories() * 2
    random.Random(23).shuffle(stream)
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(stream), encoding="utf-8")

    result = run_json([str(path), "--state", state], capsys)

    assert result["failed"] == {}
    assert result["skipped"]["no_email"] >= 2
    assert result["skipped"]["email_unverified"] >= 1
    by_owner = {c.get("auth0_user_id"): c for c in lifecycle_crm.contacts()}
    assert by_owner[BYSTANDER] == bystander
    assert SMS not in by_owner
    assert FAKE not in by_owner
    seen = {
        owner: (c["id"] if owner == REAL else None, c["email"], c["name"], c["status"])
        for owner, c in by_owner.items()
        if owner != BYSTANDER
    }
    assert seen == {
        REAL: (kim["id"], "kim@example.com", "Kim Real", "active"),
        BLOCKY: (None, "bo@example.com", "Bo B", "deactivated"),
        PRIMARY: (None, "dee@example.com", "Dee", "active"),
        SECONDARY: (None, "dee.g@example.com", "Dee Gh", "active"),
    }


def test_an_unlinked_secondary_sharing_the_address_waits_for_a_person(
    lifecycle_crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The reference server refuses a taken address on POST in both modes: two live users
    # with one address cannot both have a contact, so the unlinked secondary's changes wait
    # in the DLQ (they were skipped as account_linked for ever before), and the primary's
    # contact is never written with them.
    stream = [
        created(SECONDARY, at(0), email="dee@example.com", email_verified=True, name="Dee G"),
        updated(
            PRIMARY, at(2), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY, SECONDARY),
        ),
        deleted(SECONDARY, at(2)),
        updated(
            PRIMARY, at(4), email="dee@example.com", email_verified=True, name="Dee",
            identities=identities(PRIMARY),
        ),
        updated(SECONDARY, at(5), email="dee@example.com", email_verified=True, name="Dee Gh"),
    ]  # fmt: skip
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(stream), encoding="utf-8")

    result = run_json([str(path)], capsys, code=1)

    assert result["failed"] == {"owned_by_other": 1}
    [contact] = lifecycle_crm.contacts()
    assert (contact["auth0_user_id"], contact["name"], contact["status"]) == (
        PRIMARY,
        "Dee",
        "active",
    )
