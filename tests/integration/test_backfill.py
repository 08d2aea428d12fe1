"""`auth0-sync backfill` against moto's state table and DLQ, the reference CRM over HTTP and
the fake Management API: what the CRM holds afterwards is read back from the CRM itself."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.names import Env
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync_cli.backfill.borrowed import LambdaInvoker
from auth0_sync_cli.backfill.checkpoint import Checkpoint
from auth0_sync_cli.backfill.engine import Backfill
from auth0_sync_cli.backfill.snapshot import snapshot_id
from auth0_sync_cli.backfill.targets import LambdaTarget, build_target
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.export import read_export
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import bus_event
from tests.cli_support import auth0_env
from tests.fakes.auth0_mgmt import FakeAuth0
from tests.integration.helpers import invoke, state_of
from tests.integration.initial_sync import (
    GONE_USER,
    USERS,
    contact_of,
    contacts,
    seed_crm,
    user,
    write_export,
)
from tests.integration.lambda_double import FUNCTIONS, LambdaDouble

pytestmark = pytest.mark.integration


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_backfill_links_by_email_refreshes_stale_fields_and_creates_the_rest(
    sync_env: LocalResources, crm: CrmServer, users_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_crm(crm)

    code, report = run_cli(capsys, "backfill", "--export", str(users_export), "--rate", "1000")

    assert code == 0, report
    counts = report["counts"]
    assert (counts["link"], counts["create"], counts["update"]) == (2, 2, 0)
    assert contact_of(crm, "auth0|u001")["id"] == ids["in_step"]
    stale = contact_of(crm, "auth0|u002")
    assert stale["id"] == ids["stale"]
    assert (stale["name"], stale["family_name"]) == ("Bea Stale-No-More", "Number2")
    # Absent from the export: kept, as a live user.updated would keep it (ABSENT_FIELDS=keep).
    assert stale["phone"] == "+1"
    assert contact_of(crm, "auth0|u004")["phone"] == "+441234567"
    assert all(contact_of(crm, u["user_id"])["status"] == "active" for u in USERS)
    assert len(contacts(crm)) == 5  # two linked, two created, the deleted user's one
    state = state_of(sync_env, "auth0|u003")
    assert state is not None
    assert state.last_event_id == snapshot_id("auth0|u003", USERS[2]["updated_at"])


def test_a_second_run_is_a_duplicate_and_costs_no_crm_call(
    sync_env: LocalResources, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_crm(crm)
    export = write_export(tmp_path / "users.json", USERS, gzipped=False)
    assert run_cli(capsys, "backfill", "--export", str(export), "--rate", "1000")[0] == 0
    before = crm.stats()["by_method"]

    code, report = run_cli(capsys, "backfill", "--export", str(export), "--rate", "1000")

    assert code == 0
    assert report["counts"]["unchanged"] == len(USERS)
    assert report["reasons"] == {"unchanged:duplicate": len(USERS)}
    assert report["crm_calls"] == 0
    after = crm.stats()["by_method"]
    assert (after["POST"], after["PATCH"]) == (before["POST"], before["PATCH"])
    # At most the listing (one page) was read twice: the brake's count, then the sweep.
    assert after["GET"] - before["GET"] <= 2


def test_a_snapshot_never_overwrites_a_newer_event_already_applied(
    sync_env: LocalResources, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = user(5, name="Newer Name", updated_at="2026-02-20T08:00:00.000Z")
    moment = datetime(2026, 2, 20, 8, 0, tzinfo=UTC)
    assert invoke(bus_event("user.updated", newer, moment, "evt_live5"))["status"] == "applied"
    capsys.readouterr()  # the handler's own log lines
    older = user(5, name="Older Name")  # the export was taken before that change
    export = write_export(tmp_path / "users.json.gz", [older])

    code, report = run_cli(capsys, "backfill", "--export", str(export))

    assert code == 0
    assert report["reasons"] == {"skipped:stale": 1}
    assert contact_of(crm, "auth0|u005")["name"] == "Newer Name"


def test_dry_run_prints_the_plan_and_writes_nothing(
    sync_env: LocalResources, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_crm(crm)
    crm.store.seed({"email": "dup@example.com"})
    crm.store.seed({"email": "dup@example.com"})
    taken = crm.store.seed({"email": "taken@example.com", "auth0_user_id": "google|someone"})
    del taken
    users = [
        *USERS,
        user(6, email="dup@example.com"),  # two contacts have it: never guessed
        user(7, email="taken@example.com"),  # another live identity's contact
    ]
    export = write_export(tmp_path / "users.json.gz", users)
    before = contacts(crm)

    code, report = run_cli(capsys, "backfill", "--export", str(export), "--dry-run")

    assert code == 0
    counts = report["counts"]
    assert (counts["create"], counts["link"], counts["ambiguous"]) == (2, 2, 1)
    assert counts["owned_by_other"] == 1
    assert contacts(crm) == before
    assert state_of(sync_env, "auth0|u003") is None
    stale = [d for d in report["diffs"] if d["contact_id"] == ids["stale"]]
    assert stale[0]["fields"]["name"] == {"crm": "Bea Old", "auth0": "Bea Stale-No-More"}


def test_an_interrupted_backfill_resumes_after_its_checkpoint(
    sync_env: LocalResources, crm: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = [user(n) for n in range(10, 30)]
    export = write_export(tmp_path / "users.json.gz", users)
    ckpt = tmp_path / "backfill.ckpt"
    target = build_target(target="local", dry_run=False, bucket=TokenBucket(None))
    checkpoint = Checkpoint.open(str(ckpt), str(export))
    # As a Ctrl-C once 7 users are done: the engine hands out no more, in-flight ones end.
    engine = Backfill(
        target, checkpoint, workers=2, should_stop=lambda: checkpoint.counts.total() >= 7
    )
    first = engine.run(read_export(str(export)))
    assert first.interrupted
    saved = json.loads(ckpt.read_text())
    assert 7 <= saved["done_through"] < len(users)
    assert len(contacts(crm)) >= saved["done_through"]

    code, report = run_cli(
        capsys, "backfill", "--export", str(export), "--checkpoint", str(ckpt), "--rate", "1000"
    )

    assert code == 0
    assert report["resumed_after_line"] == saved["done_through"]
    assert report["users"] == len(users) - saved["done_through"]
    for u in users:  # every user once, none twice
        assert contact_of(crm, u["user_id"])["email"] == u["email"]
    assert json.loads(ckpt.read_text())["done_through"] == len(users)


def test_a_checkpoint_of_another_export_is_refused(
    sync_env: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_export(tmp_path / "a.json.gz", USERS)
    second = write_export(tmp_path / "b.json.gz", USERS)
    ckpt = tmp_path / "c.ckpt"
    Checkpoint.open(str(ckpt), str(first)).save()

    code = main(["backfill", "--export", str(second), "--checkpoint", str(ckpt)])

    assert code == 2
    err = capsys.readouterr().err
    assert f"--checkpoint {ckpt} belongs to the export {first}" in err
    assert "Traceback" not in err


def test_a_line_that_is_not_a_user_is_named(
    sync_env: LocalResources, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "bad.json"
    export.write_text(json.dumps(USERS[0]) + "\n[1, 2]\n")

    code = main(["backfill", "--export", str(export)])

    assert code == 2
    assert f"{export}:2: expected a user object" in capsys.readouterr().err


def test_the_users_come_from_a_management_api_export_job(
    sync_env: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_crm(crm)
    saved = tmp_path / "export.json.gz"
    with FakeAuth0(export_pending_polls=1) as fake:
        for u in USERS:
            fake.add_user(**u, logins_count=3)
        auth0_env(fake, monkeypatch)

        code, report = run_cli(capsys, "backfill", "--save-export", str(saved), "--rate", "1000")

        started = [r for r in fake.api_requests() if r.path == "/api/v2/jobs/users-exports"]
    assert code == 0, report
    assert started[0].json["format"] == "json"
    names = {f["name"] for f in started[0].json["fields"]}
    assert {"user_id", "updated_at", "email", "name", "phone_number", "app_metadata"} <= names
    assert (report["counts"]["link"], report["counts"]["create"]) == (2, 2)
    assert contact_of(crm, "auth0|u003")["name"] == "User 3"
    assert "logins_count" not in next(iter(read_export(str(saved)))).user  # type: ignore[operator]


def test_an_expired_download_link_is_a_clear_error(
    sync_env: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeAuth0(export_pending_polls=0, export_ttl_seconds=-1) as fake:
        fake.add_user(**USERS[0])
        auth0_env(fake, monkeypatch)

        code = main(["backfill", "--save-export", str(tmp_path / "e.json.gz")])

    err = capsys.readouterr().err
    assert code == 2
    assert "the export's download link has expired (HTTP 403)" in err
    assert "run the command again for a new export" in err
    assert "Traceback" not in err
    assert contacts(crm) == []
    assert not (tmp_path / "e.json.gz").exists()


def test_the_contact_of_a_user_deleted_from_auth0_is_deactivated(
    sync_env: LocalResources, crm: CrmServer, users_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_crm(crm)

    code, report = run_cli(capsys, "backfill", "--export", str(users_export), "--rate", "1000")

    assert code == 0
    assert report["counts"]["deactivate"] == 1
    gone = next(c for c in contacts(crm) if c["id"] == ids["gone"])
    assert (gone["status"], gone["auth0_user_id"]) == ("deactivated", GONE_USER)


def test_target_lambda_invokes_the_deployed_handler_and_pays_its_crm_calls(
    sync_env: LocalResources,
    crm: CrmServer,
    lambda_api: LambdaDouble,
    users_export: Path,
) -> None:
    seed_crm(crm)
    invoker = LambdaInvoker(FUNCTIONS, client=boto3.client("lambda", endpoint_url=lambda_api.url))
    bucket = TokenBucket(None)
    engine = Backfill(LambdaTarget(invoker, bucket), Checkpoint(None, str(users_export)), workers=2)

    report = engine.run(read_export(str(users_export)))

    assert (report.counts["link"], report.counts["create"]) == (2, 2)
    assert {c["function"] for c in lambda_api.calls} == {"Auth0Sync-UserUpdated"}
    assert {c["invocation_type"] for c in lambda_api.calls} == {"RequestResponse"}
    assert sorted(c["event_id"] for c in lambda_api.calls) == sorted(
        snapshot_id(u["user_id"], u["updated_at"]) for u in USERS
    )
    assert contact_of(crm, "auth0|u003")["name"] == "User 3"
    # Each invocation took one token and paid for the rest of its CRM calls afterwards.
    assert bucket.taken == report.crm_calls


def test_progress_shows_the_count_and_an_eta_on_stderr(
    sync_env: LocalResources, crm: CrmServer, users_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backfill", "--export", str(users_export), "--rate", "1000", "--progress"])

    captured = capsys.readouterr()
    assert code == 0
    assert f"backfill {len(USERS)}/{len(USERS)} (100%)  ETA 0m00s" in captured.err
    assert "backfill of" in captured.out


def test_stack_points_the_local_sync_at_the_deployed_handlers_environment(
    sync_env: LocalResources,
    crm: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --stack, the state table, DLQ and CRM come from the deployed function's own
    environment (read through Lambda), whatever this shell says."""
    environment = {name: value for name, value in sync_env.environment().items() if name.isupper()}
    environment.pop("AWS_ENDPOINT_URL", None)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        environment.pop(name, None)
    environment[Env.CRM_BASE_URL] = crm.base_url
    role = boto3.client("iam").create_role(
        RoleName="handler", AssumeRolePolicyDocument="{}", Path="/"
    )["Role"]["Arn"]
    boto3.client("lambda").create_function(
        FunctionName="Auth0Sync-UserUpdated",
        Runtime="python3.12",
        Role=role,
        Handler="auth0_sync.handlers.user_updated.handler",
        Code={"ZipFile": zip_of("handler.py", "")},
        Environment={"Variables": environment},
    )
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ReplayFunctions": {"Value": "user.updated=Auth0Sync-UserUpdated"},
        },
    }
    boto3.client("cloudformation").create_stack(
        StackName="Auth0Sync", TemplateBody=json.dumps(template)
    )
    monkeypatch.setenv(Env.CRM_BASE_URL, "http://127.0.0.1:9")  # not what the stack says
    monkeypatch.setenv(Env.STATE_TABLE, "not-the-stacks-table")
    export = write_export(tmp_path / "users.json.gz", USERS[2:3])

    code, report = run_cli(
        capsys, "backfill", "--stack", "Auth0Sync", "--export", str(export), "--rate", "1000"
    )

    assert code == 0, report
    assert report["counts"]["create"] == 1
    assert contact_of(crm, "auth0|u003")["name"] == "User 3"
    assert state_of(sync_env, "auth0|u003") is not None


def zip_of(name: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()
