"""The DLQ for a person: `dlq show`, `dlq delete` (reason logged, export), and the replay
command's messages for an empty DLQ, a bad --type and a Lambda dry run with no CRM
settings. Against moto's DLQ, through the CLI's entry point."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.lambda_double import FUNCTIONS, LambdaDouble
from tests.integration.test_replay import (
    FIRST_FAILURE,
    messages,
    put_delivery_failure,
    put_handler_failure,
    put_on_failure,
    user_event,
)

pytestmark = pytest.mark.integration


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# dlq show ---------------------------------------------------------------------------------


def test_show_gives_the_messages_of_one_event_with_the_profile_masked(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    event = user_event(1)
    put_on_failure(sync_env.dlq_url, event)
    put_handler_failure(sync_env.dlq_url, event)
    put_on_failure(sync_env.dlq_url, user_event(2))

    code, out, _ = cli(capsys, "dlq", "show", "evt_created0001m000", "--json")

    assert code == 0
    shown = json.loads(out)
    assert sorted((m["shape"], m["reason"], m["attempts"]) for m in shown["messages"]) == [
        ("handler", "crm_401", 1),
        ("on_failure", "crm_503", 3),
    ]
    handler = next(m for m in shown["messages"] if m["shape"] == "handler")
    assert handler["first_failure_at"] == FIRST_FAILURE
    profile = shown["event"]["detail"]["data"]["object"]
    assert (profile["user_id"], profile["email"], profile["name"]) == (
        "auth0|user0001",
        "***",
        "***",
    )
    assert shown["masked"] is True
    assert "user1@example.com" not in out
    assert len(messages(sync_env)) == 3  # nothing removed or hidden


def test_show_unmask_and_the_text_form(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    put_delivery_failure(sync_env.dlq_url, user_event(3))
    code, out, _ = cli(capsys, "dlq", "show", "evt_created0003m000")
    assert code == 0
    assert out.splitlines()[0].startswith(
        "event evt_created0003m000 (user.created, user auth0|user0003): 1 message(s) in "
    )
    assert "  reason         delivery_failed" in out
    assert "  attempts       185" in out
    assert "  rule_arn       arn:aws:events:eu-west-1:123456789012:rule/" in out
    assert "(personal fields masked; --unmask to show them)" in out
    assert "user3@example.com" not in out

    code, out, _ = cli(capsys, "dlq", "show", "evt_created0003m000", "--unmask", "--json")
    assert json.loads(out)["event"] == user_event(3)


def test_show_of_an_unknown_id_says_so_in_one_line(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(4))
    code, out, err = cli(capsys, "dlq", "show", "evt_nope")
    assert (code, out) == (1, "")
    assert only_line(err).startswith(
        "auth0-sync dlq show: error: no message or event 'evt_nope' among"
    )


# dlq delete -------------------------------------------------------------------------------


def test_delete_is_refused_without_a_reason(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str]
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(5))
    with pytest.raises(SystemExit) as exit_info:
        main(["dlq", "delete", "evt_created0005m000"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
    code, _, err = cli(capsys, "dlq", "delete", "evt_created0005m000", "--reason", "  ")
    assert code == 2
    assert only_line(err) == "auth0-sync dlq delete: error: --reason must say why (it is logged)"
    assert len(messages(sync_env)) == 1


def test_delete_exports_then_deletes_and_logs_the_reason(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    poison = user_event(6)
    put_on_failure(sync_env.dlq_url, poison)
    put_handler_failure(sync_env.dlq_url, poison)
    put_on_failure(sync_env.dlq_url, user_event(7))
    export = tmp_path / "deleted.jsonl"

    code, out, err = cli(
        capsys,
        "dlq",
        "delete",
        "evt_created0006m000",
        "--reason",
        "test tenant user, not a customer",
        "--export",
        str(export),
    )

    assert code == 0
    assert out.strip() == f"deleted 2 of 2 message(s); exported to {export}"
    logged = [json.loads(line) for line in err.splitlines()]
    assert [(x["message"], x["event_id"], x["deletion_reason"]) for x in logged] == [
        ("dead letter deleted", "evt_created0006m000", "test tenant user, not a customer")
    ] * 2
    exported = [json.loads(line) for line in export.read_text().splitlines()]
    assert sorted(x["shape"] for x in exported) == ["handler", "on_failure"]
    assert {x["deletion_reason"] for x in exported} == {"test tenant user, not a customer"}
    # Enough to send it again: the exact body and attributes.
    on_failure = next(x for x in exported if x["shape"] == "on_failure")
    assert json.loads(on_failure["body"])["requestPayload"] == poison
    handler = next(x for x in exported if x["shape"] == "handler")
    assert json.loads(handler["body"]) == poison
    assert handler["message_attributes"]["reason"].startswith("crm_401: ")
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    # The other event is untouched.
    assert [m["body"]["requestPayload"]["detail"]["id"] for m in messages(sync_env)] == [
        "evt_created0007m000"
    ]


def test_delete_with_an_unknown_id_deletes_nothing(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(8))
    export = tmp_path / "deleted.jsonl"
    code, _, err = cli(
        capsys, "dlq", "delete", "evt_created0008m000", "evt_typo", "--reason", "x",
        "--export", str(export),
    )  # fmt: skip
    assert code == 2
    assert only_line(err).startswith(
        "auth0-sync dlq delete: error: nothing deleted: no visible message or event 'evt_typo'"
    )
    assert not export.exists()
    assert len(messages(sync_env)) == 1


def test_delete_with_an_export_that_cannot_be_written_deletes_nothing(
    sync_env: LocalResources, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(9))
    missing_dir = tmp_path / "no" / "such" / "dir.jsonl"
    # Refused as argparse refuses a bad value, before the command reads the queue.
    with pytest.raises(SystemExit) as info:
        cli(
            capsys,
            "dlq",
            "delete",
            "evt_created0009m000",
            "--reason",
            "x",
            "--export",
            str(missing_dir),
        )
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"auth0-sync dlq delete: error: argument --export: no folder {missing_dir.parent} "
        "for dir.jsonl: create it first"
    )
    assert len(messages(sync_env)) == 1


# replay's messages ------------------------------------------------------------------------


def test_replay_of_an_empty_dlq_says_nothing_to_replay(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "replay")
    assert code == 0
    assert only_line(out) == f"nothing to replay: the DLQ {sync_env.dlq_url} is empty"
    put_on_failure(sync_env.dlq_url, user_event(1))
    code, out, _ = cli(capsys, "replay", "--type", "user.deleted")
    assert code == 0
    assert only_line(out) == (
        f"nothing to replay: none of the 1 message(s) in {sync_env.dlq_url} match the selection"
    )
    assert len(messages(sync_env)) == 1


@pytest.mark.parametrize("verb", [["replay"], ["replay", "--dry-run"]])
def test_replay_type_is_validated_like_streams(
    verb: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*verb, "--type", "user.creatd"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "argument --type: 'user.creatd' is not one of user.created, user.updated, "
            "user.deleted, organization.created, organization.updated, organization.deleted, "
            "organization.member.added, organization.member.deleted, "
            "organization.member.role.assigned, organization.member.role.deleted"
        )
    )


def test_replay_type_accepts_the_legacy_spelling(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(2))
    code, out, _ = cli(capsys, "replay", "--type", "com.auth0.user.created", "--json")
    assert (code, json.loads(out)["applied"]) == (0, {"created": 1})


def test_lambda_dry_run_needs_no_crm_settings(
    sync_env: LocalResources,
    lambda_api: LambdaDouble,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(3))
    put_delivery_failure(sync_env.dlq_url, user_event(3, "user.deleted", 4))
    for name in (Env.CRM_BASE_URL, Env.CRM_TOKEN_SECRET_ARN, Env.CRM_API_TOKEN):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", lambda_api.url)
    functions = ",".join(f"{t}={n}" for t, n in FUNCTIONS.items())

    code, out, err = cli(
        capsys, "replay", "--target", "lambda", "--functions", functions, "--dry-run"
    )

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"dry run (nothing sent, nothing deleted) of {sync_env.dlq_url}:"
    assert lines[1:] == [
        "  evt_created0003m000  user.created  auth0|user0003  would invoke "
        "Auth0Sync-UserCreated  (was: crm_503)",
        "  evt_deleted0003m004  user.deleted  auth0|user0003  would invoke "
        "Auth0Sync-UserDeleted  (was: delivery_failed)",
        "  2 event(s) selected of 2 message(s) read",
    ]
    assert lambda_api.calls == []
    assert len(messages(sync_env)) == 2


def test_replay_without_crm_settings_names_the_variable(
    sync_env: LocalResources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(Env.CRM_BASE_URL)
    put_on_failure(sync_env.dlq_url, user_event(4))
    code, _, err = cli(capsys, "replay")
    assert code == 2
    assert only_line(err) == (
        "auth0-sync replay: error: invalid configuration: CRM_BASE_URL: Field required"
    )
    assert len(messages(sync_env)) == 1


@pytest.mark.parametrize("flag", ["--limit", "--max"])  # --max: the old, hidden spelling
def test_replay_limit_replays_that_many_and_leaves_the_rest(
    flag: str, sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(3):
        put_on_failure(sync_env.dlq_url, user_event(n))
    code, out, _ = cli(capsys, "replay", flag, "2", "--json")
    assert (code, json.loads(out)["applied"]) == (0, {"created": 2})
    assert len(messages(sync_env)) == 1
    assert "--max" not in cli_help(capsys, "replay")


def cli_help(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main([*args, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "verb", [["dlq", "list"], ["dlq", "show", "evt_x"], ["dlq", "delete", "evt_x", "--reason", "r"]]
)
def test_dlq_with_a_profile_that_does_not_exist_says_so(
    verb: list[str],
    sync_env: LocalResources,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_on_failure(sync_env.dlq_url, user_event(1))
    monkeypatch.setenv("AWS_PROFILE", "default")  # restored after --profile sets it
    code, _, err = cli(capsys, *verb, "--profile", "no-such-profile")
    monkeypatch.delenv("AWS_PROFILE")
    assert code == 2
    assert only_line(err) == (
        f"auth0-sync {' '.join(verb[:2])}: error: AWS profile 'no-such-profile' not found: fix "
        "--profile or AWS_PROFILE (`aws configure list-profiles` lists them)"
    )
    assert len(messages(sync_env)) == 1
