"""`auth0-sync reconcile` after a backfill, against moto's state table and the reference CRM
over HTTP: in step first; then drift planted by hand in the CRM is reported exactly, and
`--fix` repairs what the rules allow, which is read back from the CRM."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.initial_sync import (
    USERS,
    contact_of,
    contacts,
    patch,
    seed_crm,
    user,
    write_export,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def backfilled(
    sync_env: LocalResources, crm: CrmServer, users_export: Path, capsys: pytest.CaptureFixture[str]
) -> Path:
    """The CRM of the initial-sync story after `backfill`; the export it came from."""
    seed_crm(crm)
    assert main(["backfill", "--export", str(users_export), "--rate", "1000"]) == 0
    capsys.readouterr()
    return users_export


def reconcile(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["reconcile", *argv, "--rate", "1000", "--json"])
    return code, json.loads(capsys.readouterr().out)


def found(report: dict[str, Any], key: str = "drift") -> set[tuple[Any, ...]]:
    return {(d["kind"], d["user_id"], d["field"], d["auth0"], d["crm"]) for d in report[key]}


def test_after_a_backfill_the_crm_is_in_step(
    backfilled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = reconcile(capsys, "--export", str(backfilled))

    assert code == 0, report["drift"]
    assert report["in_step"] is True
    assert set(report["counts"].values()) == {0}
    assert (report["users"], report["contacts"]) == (len(USERS), 5)


def test_planted_drift_is_reported_exactly_and_fix_repairs_what_the_rules_allow(
    backfilled: Path, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patch(crm, contact_of(crm, "auth0|u003")["id"], {"name": "Hand Edited"})
    patch(crm, contact_of(crm, "auth0|u001")["id"], {"status": "deactivated"})
    patch(crm, contact_of(crm, "auth0|u004")["id"], {"phone": "+999"})
    unhooked = contact_of(crm, "auth0|u002")["id"]
    patch(crm, unhooked, {"auth0_user_id": ""})
    stray = crm.store.seed({"email": "stray@example.com"})["id"]
    ghost = crm.store.seed({"email": "ghost@example.com", "auth0_user_id": "auth0|ghost"})["id"]
    drift_csv = tmp_path / "drift.csv"

    code, report = reconcile(capsys, "--export", str(backfilled), "--csv", str(drift_csv))

    assert code == 1
    assert found(report) == {
        ("field_differs", "auth0|u003", "name", "User 3", "Hand Edited"),
        ("field_differs", "auth0|u001", "status", "active", "deactivated"),
        ("field_differs", "auth0|u004", "phone", "+441234567", "+999"),
        ("state_disagrees", "auth0|u002", "auth0_user_id", "auth0|u002", ""),
        ("user_gone", "auth0|ghost", None, None, None),
        ("unclaimed", None, None, None, "stray@example.com"),
    }
    with drift_csv.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 6
    assert {r["contact_id"] for r in rows if r["kind"] == "unclaimed"} == {stray}

    code, report = reconcile(capsys, "--export", str(backfilled), "--fix")

    assert code == 1  # the stray contact is nobody's: a person decides
    assert found(report, "left_for_a_person") == {
        ("unclaimed", None, None, None, "stray@example.com")
    }
    assert contact_of(crm, "auth0|u003")["name"] == "User 3"
    assert contact_of(crm, "auth0|u001")["status"] == "active"
    assert contact_of(crm, "auth0|u004")["phone"] == "+441234567"
    assert contact_of(crm, "auth0|u002")["id"] == unhooked
    assert next(c for c in contacts(crm) if c["id"] == ghost)["status"] == "deactivated"

    code, report = reconcile(capsys, "--export", str(backfilled))
    assert code == 1
    assert report["counts"] == {
        "no_contact": 0,
        "field_differs": 0,
        "user_gone": 0,
        "claimed_twice": 0,
        "unclaimed": 1,
        "state_disagrees": 0,
    }


def test_a_user_without_a_contact_is_reported_and_fix_creates_it(
    backfilled: Path, tmp_path: Path, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    newcomer = {**USERS[2], "user_id": "auth0|u009", "email": "user9@example.com"}
    export = write_export(tmp_path / "more.json.gz", [*USERS, newcomer])

    code, report = reconcile(capsys, "--export", str(export))
    assert code == 1
    assert found(report) == {("no_contact", "auth0|u009", None, None, None)}

    code, report = reconcile(capsys, "--export", str(export), "--fix")
    assert code == 0, report
    assert report["in_step_after_fix"] is True
    assert contact_of(crm, "auth0|u009")["email"] == "user9@example.com"


def test_fix_repairs_independent_users_in_batch_calls(
    backfilled: Path, tmp_path: Path, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # 30 users without a contact, repaired in batches of 8: one user's repair is a find by
    # owner, a find by email and a create (3 requests each with single calls: 90).
    newcomers = [user(n) for n in range(100, 130)]
    export = write_export(tmp_path / "more.json.gz", [*USERS, *newcomers])
    crm.reset_stats()

    code, report = reconcile(capsys, "--export", str(export), "--fix", "--batch-size", "8")

    assert code == 0, report
    assert report["fix"]["outcomes"] == {"create": 30}
    assert report["in_step_after_fix"] is True
    for u in newcomers:
        assert contact_of(crm, u["user_id"])["family_name"] == u["family_name"]
    # 3 kinds of call in batches of 8 (4 batches each when full, a few partial ones), and
    # the listing before and after the fix.
    assert crm.stats()["total"] <= 20, crm.stats()


def test_the_table_names_each_difference(
    backfilled: Path, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    patch(crm, contact_of(crm, "auth0|u003")["id"], {"name": "Hand Edited"})

    code = main(["reconcile", "--export", str(backfilled)])

    out = capsys.readouterr().out
    assert code == 1
    assert "drift: field_differs 1" in out
    row = next(line for line in out.splitlines() if line.startswith("field_differs"))
    assert row.split()[1:4] == ["auth0|u003", contact_of(crm, "auth0|u003")["id"], "name"]
