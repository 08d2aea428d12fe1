"""`auth0-sync backfill` (batch calls by default): the users' CRM calls gathered into each
destination's batch calls (the reference CRM's contract 1.2 batches, the HubSpot and
Salesforce fakes'), the same end as single calls: every user exactly one contact holding its
fields, read back from the CRM itself; and far fewer requests.

Batches of `BATCH` records (`--batch-size`) so that a few dozen users cross several batch
boundaries; the run at the destinations' own limits (2,000 users) is `python -m bench.bulk`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.names import CrmType, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.exits import EXIT_NEEDS_ATTENTION
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.initial_sync import contact_of, contacts, seed_crm, user, write_export

pytestmark = pytest.mark.integration

SIZE = 30
BATCH = 8  # SIZE is more than three batches of BATCH
SMALL = ("--batch-size", str(BATCH))
FEW = 20  # requests: 3 a user with single calls (90)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def many() -> list[dict[str, Any]]:
    return [user(n) for n in range(100, 100 + SIZE)]


def test_batched_backfill_links_refreshes_and_creates_as_single_calls_do(
    sync_env: LocalResources, crm: CrmServer, users_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_crm(crm)

    code, report = run_cli(
        capsys, "backfill", "--export", str(users_export), "--rate", "1000", *SMALL
    )

    assert code == 0, report
    counts = report["counts"]
    assert (counts["link"], counts["create"], counts["update"]) == (2, 2, 0)
    assert contact_of(crm, "auth0|u001")["id"] == ids["in_step"]
    stale = contact_of(crm, "auth0|u002")
    assert (stale["id"], stale["name"], stale["phone"]) == (ids["stale"], "Bea Stale-No-More", "+1")
    assert contact_of(crm, "auth0|u004")["phone"] == "+441234567"
    assert len(contacts(crm)) == 5


def test_a_batched_backfill_of_many_users_converges_in_few_requests(
    sync_env: LocalResources, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = many()
    crm.store.seed({"email": "user100@example.com", "name": "Stale"})  # links by email
    export = write_export(tmp_path / "users.json.gz", users)
    crm.reset_stats()

    code, report = run_cli(capsys, "backfill", "--export", str(export), "--rate", "1000", *SMALL)

    assert code == 0, report
    assert report["counts"]["create"] == SIZE - 1
    assert report["counts"]["link"] == 1
    assert mismatches(users, contacts(crm)) == []
    requests = crm.stats()["total"]
    # Single calls: find by id, find by email, create = 3 a user (90). Batched: 4 batches
    # of 8 per phase (12) when full, plus the one link's read and guarded write, plus
    # a few partial batches (a batch goes when every user in flight waits).
    assert requests <= FEW, crm.stats()


def test_a_records_own_conflict_in_a_batch_ends_that_user_only(
    sync_env: LocalResources,
    unique_crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Two users with one email: in one batch of creates, the second meets 409 (unique
    # emails), which the core resolves as its single create's 409: the contact found by
    # email is the first user's, so the second needs a person; the others are created.
    monkeypatch.setenv(Env.CRM_BASE_URL, unique_crm.base_url)
    users = [user(n) for n in range(1, 6)] + [user(6, email="user1@example.com")]
    export = write_export(tmp_path / "users.json.gz", users)

    code, report = run_cli(capsys, "backfill", "--export", str(export), "--rate", "1000", *SMALL)

    assert report["counts"]["create"] == 5, report
    assert report["counts"]["owned_by_other"] == 1
    assert [p["reason"] for p in report["needs_a_person"]] == ["owned_by_other"]
    assert code == EXIT_NEEDS_ATTENTION
    [loser] = [p["user_id"] for p in report["needs_a_person"]]
    assert loser in ("auth0|u001", "auth0|u006")  # whichever came second in the batch
    owners = sorted(c["auth0_user_id"] for c in unique_crm.contacts())
    assert owners == sorted(u["user_id"] for u in users if u["user_id"] != loser)


@pytest.mark.parametrize("crm_type", [CrmType.HUBSPOT, CrmType.SALESFORCE])
def test_a_batched_backfill_converges_on_the_vendors(
    crm_type: CrmType,
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    users = many()
    fake: FakeHubSpot | FakeSalesforce
    read: Callable[[], list[dict[str, Any]]]
    if crm_type is CrmType.HUBSPOT:
        hubspot = FakeHubSpot()
        fake, secret = hubspot, json.dumps({"token": hubspot.token})

        def read() -> list[dict[str, Any]]:
            return [hubspot_contact(r) for r in hubspot.contacts()]

        def requests() -> int:
            return len(hubspot.requests)

        def fake_requests() -> list[Any]:
            return list(hubspot.requests)

    else:
        org = FakeSalesforce()
        fake = org
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

        def read() -> list[dict[str, Any]]:
            return [salesforce_contact(r) for r in org.contacts()]

        def requests() -> int:
            return int(org.api_used)

        def fake_requests() -> list[Any]:
            return [org.stats()]

    with fake:
        for name, value in aws.environment().items():
            if name != "AWS_ENDPOINT_URL":
                monkeypatch.setenv(name, value)
        monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)
        boto3.client("secretsmanager").put_secret_value(
            SecretId=aws.secret_arn, SecretString=secret
        )
        monkeypatch.setenv(Env.CRM_TYPE, crm_type)
        monkeypatch.setenv(Env.CRM_BASE_URL, fake.base_url)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        export = write_export(tmp_path / "users.json.gz", users)

        code, report = run_cli(
            capsys, "backfill", "--export", str(export), "--rate", "1000", *SMALL
        )

        assert code == 0, report
        assert report["counts"]["create"] == SIZE
        assert mismatches(users, read(), fields=("email", "family_name")) == []
        # 4 full batches of 8 per phase, plus the listing and a few partial batches;
        # single calls: 90.
        assert requests() <= FEW, fake_requests()


def mismatches(
    users: list[dict[str, Any]],
    held: list[dict[str, Any]],
    fields: tuple[str, ...] = ("email", "name", "family_name"),
) -> list[str]:
    """Users without exactly one contact holding their fields (a duplicate is one)."""
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for contact in held:
        if contact.get("auth0_user_id"):
            by_owner.setdefault(str(contact["auth0_user_id"]), []).append(contact)
    wrong = []
    for u in users:
        found = by_owner.get(u["user_id"], [])
        if len(found) != 1 or any(
            str(found[0].get(f) or "").lower() != str(u[f]).lower() for f in fields
        ):
            wrong.append(u["user_id"])
    return wrong


def test_a_link_found_by_a_batch_query_is_written_in_a_batch_without_reading_it_again(
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Salesforce's batch query answers with a Date, the version of every record it read
    # (as a GET's is): the thread that sent the query must hand it to each user's thread,
    # whose guarded write is then based on it, with no GET of the record first.
    users = [user(n) for n in range(1, 13)]
    org = FakeSalesforce()
    with org:
        for u in users[:6]:  # half the users are in Salesforce already, by email
            org.seed(Email=u["email"], LastName="Stale")
        for name, value in aws.environment().items():
            if name != "AWS_ENDPOINT_URL":
                monkeypatch.setenv(name, value)
        monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        boto3.client("secretsmanager").put_secret_value(
            SecretId=aws.secret_arn, SecretString=secret
        )
        monkeypatch.setenv(Env.CRM_TYPE, CrmType.SALESFORCE)
        monkeypatch.setenv(Env.CRM_BASE_URL, org.base_url)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        export = write_export(tmp_path / "users.json.gz", users)
        org.requests.clear()

        code, report = run_cli(capsys, "backfill", "--export", str(export), "--rate", "1000")

        assert code == 0, report
        assert (report["counts"]["link"], report["counts"]["create"]) == (6, 6)
        held = [salesforce_contact(r) for r in org.contacts()]
        assert mismatches(users, held, fields=("email", "family_name")) == []
        assert org.requests["GET /sobjects/Contact/{x}"] == 0, org.requests
        # The links' guarded writes went in Composite requests (each write with its own
        # If-Unmodified-Since), not one PATCH each.
        assert org.requests["PATCH /sobjects/Contact/{x}"] == 0, org.requests
        assert 1 <= org.requests["POST /composite"] <= 3, org.requests
