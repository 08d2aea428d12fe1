"""The deactivation brake on the bulk paths (backfill's sweep, `reconcile --fix`), against
moto's state table and the reference CRM over HTTP: a planted mass deactivation (contacts of
users the export does not have, as a wrong export makes them) stops the command before it
writes anything; at the limit it passes; `--allow-deactivations N` lets a person proceed.
What the CRM holds afterwards is read back from the CRM's own store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.initial_sync import contact_of, contacts, patch

# Every test runs against moto's table and the stack's environment (`sync_env`).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("sync_env")]


def plant_ghosts(crm: CrmServer, n: int) -> list[str]:
    """`n` active contacts of Auth0 users the export does not list; their ids."""
    return [
        crm.store.seed({"email": f"ghost{k}@example.com", "auth0_user_id": f"auth0|ghost{k}"})["id"]
        for k in range(n)
    ]


def statuses(crm: CrmServer, ids: list[str]) -> list[str]:
    by_id = {c["id"]: c for c in contacts(crm)}
    return [by_id[i]["status"] for i in ids]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--rate", "1000"])
    out, err = capsys.readouterr()
    return code, out, err


# backfill ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ghosts", "stops"), [(2, False), (3, False), (4, True)])
def test_backfill_stops_above_the_limit_before_writing_anything(
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ghosts: int,
    stops: bool,
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "3")
    ids = plant_ghosts(crm, ghosts)

    code, out, err = cli(capsys, "backfill", "--export", str(users_export), "--json")

    if stops:
        assert code == 1
        assert "backfill would deactivate 4 contact(s) of 4, above the limit of 3" in err
        assert "--allow-deactivations 4" in err
        assert out == ""
        # Nothing written: no user's contact created, every ghost still active.
        assert len(contacts(crm)) == 4
        assert statuses(crm, ids) == ["active"] * 4
    else:
        assert code == 0, err
        assert json.loads(out)["counts"]["deactivate"] == ghosts
        assert statuses(crm, ids) == ["deactivated"] * ghosts
        assert contact_of(crm, "auth0|u003")["status"] == "active"


@pytest.mark.parametrize(("allow", "stops"), [(3, True), (4, False), (5, False)])
def test_allow_deactivations_lets_a_person_proceed_up_to_n(
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    allow: int,
    stops: bool,
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "1")
    ids = plant_ghosts(crm, 4)

    code, _, err = cli(
        capsys, "backfill", "--export", str(users_export), "--allow-deactivations", str(allow)
    )

    if stops:
        assert code == 1
        assert "above the limit of 3 (--allow-deactivations 3)" in err
        assert statuses(crm, ids) == ["active"] * 4
    else:
        assert code == 0, err
        assert statuses(crm, ids) == ["deactivated"] * 4


def test_the_default_limit_stops_a_wrong_export(
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ten contacts of this tenant's users, an export of another tenant: every contact is an
    orphan. The default (10%, rounded up) allows one of ten."""
    monkeypatch.delenv(Env.DEACTIVATION_LIMIT, raising=False)
    ids = plant_ghosts(crm, 10)

    code, _, err = cli(capsys, "backfill", "--export", str(users_export))

    assert code == 1
    assert (
        "backfill would deactivate 10 contact(s) of 10, above the limit of 1 "
        "(DEACTIVATION_LIMIT=10%)" in err
    )
    assert statuses(crm, ids) == ["active"] * 10
    assert len(contacts(crm)) == 10


def test_a_dry_run_warns_that_the_real_run_would_stop(
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "2")
    ids = plant_ghosts(crm, 3)

    code, out, _ = cli(capsys, "backfill", "--export", str(users_export), "--dry-run")

    assert code == 0
    assert (
        "warning: without --dry-run, backfill would deactivate 3 contact(s) of 3, above the "
        "limit of 2 (DEACTIVATION_LIMIT=2): it would stop first" in out
    )
    assert statuses(crm, ids) == ["active"] * 3


def test_a_bad_limit_is_a_usage_error_naming_the_variable(
    crm: CrmServer,
    users_export: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "ten")

    code, _, err = cli(capsys, "backfill", "--export", str(users_export))

    assert code == 2
    assert "DEACTIVATION_LIMIT='ten'" in err
    assert contacts(crm) == []


# reconcile --fix -------------------------------------------------------------------------------


@pytest.fixture
def backfilled(
    sync_env: LocalResources,
    crm: CrmServer,
    users_export: Path,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """Every user of the export has its contact (four, all in step); the export."""
    assert main(["backfill", "--export", str(users_export), "--rate", "1000"]) == 0
    capsys.readouterr()
    return users_export


@pytest.mark.parametrize(("ghosts", "stops"), [(2, False), (3, False), (4, True)])
def test_reconcile_fix_stops_above_the_limit_before_writing_anything(
    backfilled: Path,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ghosts: int,
    stops: bool,
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "3")
    ids = plant_ghosts(crm, ghosts)
    edited = contact_of(crm, "auth0|u003")["id"]
    patch(crm, edited, {"name": "Hand Edited"})  # drift the fix would repair

    code, out, err = cli(capsys, "reconcile", "--export", str(backfilled), "--fix", "--json")

    if stops:
        assert code == 1
        assert "reconcile --fix would deactivate 4 contact(s) of 8, above the limit of 3" in err
        assert "--allow-deactivations 4" in err
        assert statuses(crm, ids) == ["active"] * 4
        assert contact_of(crm, "auth0|u003")["name"] == "Hand Edited"  # nothing written
    else:
        assert code == 0, err
        assert json.loads(out)["in_step_after_fix"] is True
        assert statuses(crm, ids) == ["deactivated"] * ghosts
        assert contact_of(crm, "auth0|u003")["name"] == "User 3"


@pytest.mark.parametrize(("allow", "stops"), [(3, True), (4, False)])
def test_reconcile_fix_proceeds_with_allow_deactivations(
    backfilled: Path,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    allow: int,
    stops: bool,
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "0")
    ids = plant_ghosts(crm, 4)

    code, _, err = cli(
        capsys,
        "reconcile",
        "--export",
        str(backfilled),
        "--fix",
        "--allow-deactivations",
        str(allow),
    )

    assert code == (1 if stops else 0), err
    assert statuses(crm, ids) == (["active"] * 4 if stops else ["deactivated"] * 4)


def test_reconcile_without_fix_only_reports(
    backfilled: Path,
    crm: CrmServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(Env.DEACTIVATION_LIMIT, "0")
    plant_ghosts(crm, 2)

    code, out, _ = cli(capsys, "reconcile", "--export", str(backfilled), "--json")

    assert code == 1
    assert json.loads(out)["counts"]["user_gone"] == 2
