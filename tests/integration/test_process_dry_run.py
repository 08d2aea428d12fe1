"""`auth0-sync process --dry-run`: each event's plan under the configured SYNC_MODE and
DELETE_POLICY (create / update / deactivate / skip, why, and the request), with no write:
the CRM gets no POST or PATCH and the state table is the same item for item afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.builders import at, created, deleted, updated
from tests.integration.test_process_cli import run_json

pytestmark = pytest.mark.integration

KNOWN = "auth0|6d00d1e2f3a4b5c6d7e80917"
NEW = "auth0|6e00e1f2a3b4c5d6e7f80918"
SIGNUP = created(KNOWN, at(0), email="lee@example.com", name="Lee")


def table_items(aws: LocalResources) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=aws.state_table)["Items"]
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def dry_run(
    events: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(events), encoding="utf-8")
    assert main(["process", str(path), "--state", "aws", "--dry-run", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = max(n for n, line in enumerate(lines) if line == "{")
    document: dict[str, Any] = json.loads("\n".join(lines[start:]))
    return document


@pytest.fixture
def applied(
    sync_env: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> LocalResources:
    """KNOWN signed up for real (state and contact written); a CRM contact no user has."""
    monkeypatch.setenv(Env.CRM_API_TOKEN, crm.token)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)
    crm.seed_contact(email="sam@example.com", name="Sam (sales)")
    path = tmp_path / "signup.json"
    path.write_text(json.dumps([SIGNUP]), encoding="utf-8")
    assert run_json([str(path), "--state", "aws"], capsys)["failed"] == {}
    return sync_env


def test_a_dry_run_plans_each_event_and_writes_nothing(
    applied: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    contacts, items = crm.contacts(), table_items(applied)
    writes = {m: crm.stats()["by_method"][m] for m in ("POST", "PATCH")}
    events = [
        SIGNUP,  # applied already: a duplicate
        updated(KNOWN, at(5), email="lee@example.com", name="Lee B"),
        created(NEW, at(6), email="new@example.com", name="Nu"),
        updated("auth0|6f00f1a2b3c4d5e6f7a80919", at(6), email="sam@example.com", name="Sam"),
        deleted(KNOWN, at(9)),
    ]

    document = dry_run(events, tmp_path, capsys)

    assert crm.contacts() == contacts
    assert {m: crm.stats()["by_method"][m] for m in ("POST", "PATCH")} == writes
    assert table_items(applied) == items
    [lee] = [c for c in contacts if c.get("auth0_user_id") == KNOWN]
    [sam] = [c for c in contacts if c["email"] == "sam@example.com"]
    plans = [(p["action"], p["reason"]) for p in document["events"]]
    assert plans == [
        ("skip", "duplicate"),
        ("update", "updated"),
        ("create", "created"),
        ("update", "linked"),  # the sales contact, claimed by its email
        ("deactivate", "deactivated"),
    ]
    requests = [p["requests"] for p in document["events"]]
    assert requests[0] == []
    assert requests[1][0].startswith(f"PATCH /contacts/{lee['id']} ")
    assert '"name": "Lee B"' in requests[1][0]
    assert requests[2][0].startswith("POST /contacts ")
    assert '"email": "new@example.com"' in requests[2][0]
    assert requests[3][0].startswith(f"PATCH /contacts/{sam['id']} ")
    assert '"status": "deactivated"' in requests[4][0]
    assert document["configuration"]["sync_mode"] == "upsert"
    assert document["would"] == {"skip": 1, "update": 2, "create": 1, "deactivate": 1}


def test_a_dry_run_plans_under_the_configured_mode_and_policy(
    applied: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.SYNC_MODE, "update_only")
    monkeypatch.setenv(Env.DELETE_POLICY, "none")
    events = [created(NEW, at(6), email="new@example.com", name="Nu"), deleted(KNOWN, at(9))]

    document = dry_run(events, tmp_path, capsys)

    plans = [(p["action"], p["reason"], p["requests"]) for p in document["events"]]
    assert plans == [
        ("skip", "contact_missing", []),
        ("skip", "delete_policy_none", []),
    ]


def test_the_dry_run_prints_one_line_per_event_with_its_request(
    crm_without_aws: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps([created(NEW, at(6), email="new@example.com")]), encoding="utf-8")

    assert main(["process", str(path), "--state", "memory", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "nothing written; sync_mode=upsert, delete_policy=deactivate" in out
    assert f"{NEW}  would create (created)" in out
    assert "    POST /contacts {" in out
    assert crm_without_aws.contacts() == []
