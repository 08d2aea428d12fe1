"""`auth0-sync process` as a user runs it: input formats, clear input errors, counts."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import generate, reconcile
from tests.conftest import load_event

pytestmark = pytest.mark.integration


@pytest.fixture
def crm_env(crm: CrmServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CrmServer:
    monkeypatch.setenv(Env.CRM_BASE_URL, crm.base_url)
    monkeypatch.setenv(Env.CRM_API_TOKEN, crm.token)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    # A current folder of its own, which in-memory runs must leave alone.
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return crm


def run_json(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> dict[str, Any]:
    assert main(["process", *args, "--json"]) == code
    lines = capsys.readouterr().out.splitlines()
    # The document starts on a line of its own: log lines of the in-process handlers may
    # come before it (a real run is quiet).
    start = max(n for n, line in enumerate(lines) if line == "{")
    result: dict[str, Any] = json.loads("\n".join(lines[start:]))
    return result


def written(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_json_lines_in_memory_mode_counts_every_outcome(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = [
        "user_created",
        "user_updated_partial",
        "test_event",
        "unknown_type",
        "malformed_missing_user_id",
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(load_event(n)) for n in names) + "\n\n")
    result = run_json([str(path)], capsys, code=1)  # the malformed event is dead-lettered
    assert result["state"] == "memory"
    assert result["events"] == 5
    assert result["applied"] == 2
    assert result["applied_by"] == {"created": 1, "updated": 1}
    assert result["skipped"] == {"test_event": 1, "unknown_type": 1}
    assert result["failed"] == {"invalid_event": 1}
    assert result["crm_calls"] == 2
    [contact] = crm_env.contacts()
    assert contact["name"] == "Ada King"


def test_json_array_on_stdin(
    crm_env: CrmServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps([load_event("user_created")])))
    assert run_json(["-"], capsys)["applied_by"] == {"created": 1}


def test_invalid_json_names_the_line_and_exits_non_zero(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(load_event("user_created")) + "\n{not json\n")
    assert main(["process", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2: not valid JSON" in err
    assert crm_env.stats()["total"] == 0  # nothing half-processed


def test_missing_file_and_missing_configuration_are_clear(
    crm_env: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["process", str(tmp_path / "nope.jsonl")]) == 2
    assert capsys.readouterr().err == (
        f"auth0-sync process: error: {tmp_path / 'nope.jsonl'}: cannot read: "
        "No such file or directory\n"
    )
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(load_event("user_created")))
    monkeypatch.delenv(Env.CRM_BASE_URL)
    assert main(["process", str(path)]) == 2
    assert "CRM_BASE_URL: Field required" in capsys.readouterr().err


def test_wrong_flag_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["process", "x.jsonl", "--stat", "aws"])
    assert info.value.code == 2
    assert "unrecognized arguments: --stat" in capsys.readouterr().err


def test_shuffled_triplicated_stream_against_local_aws_matches_the_truth(
    crm_env: CrmServer,
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample = generate(30, seed=11, duplicate_share=0.0, specials=False)
    stream = sample.events * 3  # every event delivered three times, in a shuffled order
    __import__("random").Random(5).shuffle(stream)
    sample.seed_preexisting(lambda fields: crm_env.seed_contact(**fields))
    for name, value in aws.environment().items():
        if name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.delenv(Env.CRM_API_TOKEN)  # the token comes from the secret, as in AWS
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(stream))
    result = run_json([str(path), "--state", "aws"], capsys)
    assert result["state"] == "aws"
    assert result["events"] == len(stream)
    assert result["failed"] == {}
    # A repeat of the user's last event is a duplicate; a repeat of an older one is stale
    # (the state item de-duplicates by order, with no table of event ids).
    repeats = sum(result["skipped"].get(reason, 0) for reason in ("duplicate", "stale"))
    assert repeats >= 2 * len(sample.events)
    assert reconcile(sample.truth, crm_env.contacts()) == []


def test_outage_is_retried_like_lambda_then_dead_lettered_within_the_timeout(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm_env.set_outage(503)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(load_event("user_created")))
    result = run_json([str(path), "--timeout", "1.8"], capsys, code=1)
    # The last attempt may already meet the open circuit (5 failures in a row open it).
    assert set(result["failed"]) <= {"crm_503", "crm_circuit_open"}
    assert sum(result["failed"].values()) == 1
    # Three invocations (the first and Lambda's two retries), each retrying within its budget.
    assert crm_env.stats()["by_status"]["503"] >= 3


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["process", "x.jsonl", "--timeout", "0"])
    assert "--timeout: must be > 0, got 0" in capsys.readouterr().err


# --- input: one object, an array, JSON Lines; anything else is one line naming the line ----


def test_the_repos_pretty_printed_fixture_is_one_event(
    crm_env: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fixture = Path(__file__).parents[1] / "events" / "user_created.json"
    assert fixture.read_text(encoding="utf-8").count("\n") > 10  # pretty-printed indeed

    result = run_json([str(fixture)], capsys)

    assert (result["events"], result["applied_by"]) == (1, {"created": 1})
    [contact] = crm_env.contacts()
    assert (
        contact["auth0_user_id"]
        == load_event("user_created")["detail"]["data"]["object"]["user_id"]
    )


def test_a_utf8_bom_is_not_an_error(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(load_event("user_created")).encode() + b"\n")

    assert run_json([str(path)], capsys)["applied_by"] == {"created": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "{path}: no events: the file is empty"),
        (b"\n  \n\n", "{path}: no events: it holds only blank lines"),
        (b"[]", "{path}: no events: the JSON array is empty"),
        (
            b'{"id": "a"}\n{"id": "b", "name": "\xff"}\n',
            "{path}:2: not UTF-8 text (byte 0xff at column 22); save the file as UTF-8",
        ),
        (
            b'{"id": "a"}\n{"id": "b", "x": NaN}\n',
            "{path}:2: NaN is not valid JSON (write null or a number)",
        ),
        (
            b'{"id": "a"}\n\n{"id": "b",\n',
            "{path}:3: not valid JSON: Expecting property name enclosed in double quotes "
            "(column 12)",
        ),
        (
            b'{"id": "a"}\n' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"\n",
            "{path}:2: nested deeper than 64 levels",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "{path}: nested deeper than 64 levels"),
        (
            b'[{"id": "a"},\n ' + b"[" * 70 + b"]" * 70 + b"]",
            "{path}: element 2 of the array is nested deeper than 64 levels",
        ),
        (
            b'{\n  "id": "a"\n}\n{\n  "id": "b"\n}\n',
            "{path}:4:1: not valid JSON: Extra data; give one JSON object, a JSON array of "
            "events, or one event per line (JSON Lines)",
        ),
        (
            b'[\n  {"id": "a"},\n  {"id": "b", "x": -Infinity}\n]',
            "{path}:3: -Infinity is not valid JSON (write null or a number)",
        ),
    ],
    ids=[
        "empty",
        "blank",
        "empty-array",
        "not-utf8",
        "nan",
        "broken-line",
        "deep-line",
        "deep-document",
        "deep-element",
        "two-objects",
        "infinity-in-array",
    ],
)
def test_unreadable_input_is_one_line_naming_the_line_before_anything_runs(
    crm_env: CrmServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    message: str,
) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(content)

    code = main(["process", str(path)])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"auth0-sync process: error: {message.format(path=path)}\n"
    assert captured.out == ""
    assert crm_env.stats()["total"] == 0  # nothing ran
    assert list(Path.cwd().iterdir()) == []  # and no dead-letters file


def test_first_events_are_not_run_when_a_later_line_is_bad(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(load_event("user_created"))
    path = written(tmp_path / "e.jsonl", f"{good}\n{good}\n\xff\n".replace("\xff", "{"))

    assert main(["process", path]) == 2
    assert f"{path}:3: not valid JSON" in capsys.readouterr().err
    assert crm_env.contacts() == []


# --- exit codes and where the dead letters are ----------------------------------------------


def test_every_event_dead_lettered_exits_1_and_the_file_runs_again(
    crm_env: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created, updated = load_event("user_created"), load_event("user_updated")
    path = written(tmp_path / "e.jsonl", f"{json.dumps(created)}\n{json.dumps(updated)}\n")
    monkeypatch.setenv(Env.CRM_API_TOKEN, "a-wrong-token")
    letters = tmp_path / "letters.jsonl"

    code = main(["process", path, "--dead-letters", str(letters)])

    out = capsys.readouterr().out
    assert code == 1
    assert "dead-lettered      2   (crm_credentials_rejected 2)" in out
    assert out.endswith(
        f"dead letters written to {letters}: run them again with "
        f"`auth0-sync process {letters}` once the cause is fixed\n"
    )
    records = [json.loads(line) for line in letters.read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records] == [created, updated]
    assert [r["reason"] for r in records] == ["crm_credentials_rejected"] * 2
    assert all("HTTP 401" in r["message"] for r in records)
    assert crm_env.contacts() == []

    monkeypatch.setenv(Env.CRM_API_TOKEN, crm_env.token)  # the cause fixed
    again = run_json([str(letters)], capsys)

    assert (again["events"], again["failed"], again["dead_letters"]) == (2, {}, None)
    assert again["applied_by"]["created"] == 1
    [contact] = crm_env.contacts()
    assert contact["auth0_user_id"] == created["detail"]["data"]["object"]["user_id"]


def test_memory_mode_writes_dead_letters_to_a_new_file_in_the_output_folder(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("malformed_missing_user_id")))

    result = run_json([path], capsys, code=1)

    assert list(Path.cwd().iterdir()) == []  # never silently into the current folder
    folder = Path(os.environ["XDG_STATE_HOME"]) / "auth0-sync"
    [letters] = list(folder.iterdir())
    assert re.fullmatch(r"dead-letters-\d{8}T\d{6}Z\.jsonl", letters.name)
    assert folder.stat().st_mode & 0o777 == 0o700  # the letters hold profiles
    assert result["dead_letters"] == {
        "file": str(letters),
        "say": f"dead letters written to {letters}: run them again with "
        f"`auth0-sync process {letters}` once the cause is fixed",
    }
    [record] = [json.loads(line) for line in letters.read_text(encoding="utf-8").splitlines()]
    assert (record["reason"], record["event"]) == (
        "invalid_event",
        load_event("malformed_missing_user_id"),
    )


def test_nothing_dead_lettered_leaves_no_file(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("user_created")))

    assert run_json([path], capsys)["dead_letters"] is None
    assert list(Path.cwd().iterdir()) == []


def test_an_existing_dead_letters_file_is_refused_before_anything_runs(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("user_created")))
    letters = written(tmp_path / "old.jsonl", "kept\n")

    assert main(["process", path, "--dead-letters", letters]) == 2
    assert capsys.readouterr().err == (
        f"auth0-sync process: error: --dead-letters {letters}: the file exists; "
        "give a new file name\n"
    )
    assert Path(letters).read_text(encoding="utf-8") == "kept\n"
    assert crm_env.stats()["total"] == 0


def test_aws_state_says_the_dead_letters_are_in_the_dlq(
    crm_env: CrmServer,
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in aws.environment().items():
        if name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("malformed_missing_user_id")))

    result = run_json([path, "--state", "aws"], capsys, code=1)

    assert result["dead_letters"]["queue_url"] == aws.dlq_url
    assert list(Path.cwd().iterdir()) == []
    queue = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert queue["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_a_missing_table_is_a_configuration_error_before_anything_runs(
    crm_env: CrmServer,
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in aws.environment().items():
        if name != "AWS_ENDPOINT_URL":
            monkeypatch.setenv(name, value)
    monkeypatch.setenv(Env.STATE_TABLE, "no-such-table")
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("user_created")))

    assert main(["process", path, "--state", "aws"]) == 2
    assert capsys.readouterr().err == (
        "auth0-sync process: error: configuration: DynamoDB table 'no-such-table' not found "
        f"in region {aws_region()}: set {Env.STATE_TABLE} to the stack's table, or start "
        "`auth0-sync local-aws` and run its export lines\n"
    )
    assert crm_env.stats()["total"] == 0


def aws_region() -> str:
    return str(boto3.session.Session().region_name)


@pytest.mark.parametrize("url", ["not-a-url", "ftp://crm.example.com", "http://", "http://h:x"])
def test_a_crm_base_url_that_is_not_a_url_is_refused_before_anything_runs(
    crm_env: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    monkeypatch.setenv(Env.CRM_BASE_URL, url)
    path = written(tmp_path / "e.jsonl", json.dumps(load_event("user_created")))

    assert main(["process", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"auth0-sync process: error: configuration: {Env.CRM_BASE_URL}=")
    assert err.count("\n") == 1
    assert list(Path.cwd().iterdir()) == []


def test_an_outage_fails_fast_once_the_circuit_opens(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 events while the CRM is down: the first ones find out, then the breaker answers
    for the CRM; every event ends in the dead letters with a transient reason."""
    sample = generate(200, seed=3, duplicate_share=0.0, specials=False)
    signups = [e for e in sample.events if e["detail"]["type"] == "user.created"][:200]
    crm_env.set_outage(503)
    path = tmp_path / "outage.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in signups), encoding="utf-8")

    result = run_json([str(path), "--timeout", "5"], capsys, code=1)

    assert result["events"] == len(signups) == 200
    assert set(result["failed"]) <= {"crm_503", "crm_circuit_open"}
    assert sum(result["failed"].values()) == 200
    # Without the breaker: 3 invocations x up to 5 attempts for each event (over 600).
    assert crm_env.stats()["by_status"]["503"] <= 20


def test_json_lines_whose_first_line_is_long_and_the_dead_letters_of_them_run(
    crm_env: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    big = load_event("user_created")
    big["detail"]["data"]["object"]["app_metadata"] = {"notes": "x" * 6000}  # one line > 4 KB
    second = load_event("user_updated")  # carries the email: it waits for no create
    path = written(tmp_path / "e.jsonl", f"{json.dumps(big)}\n{json.dumps(second)}\n")
    letters = tmp_path / "letters.jsonl"

    monkeypatch.setenv(Env.CRM_API_TOKEN, "a-wrong-token")
    failed = run_json([path, "--dead-letters", str(letters)], capsys, code=1)
    assert failed["events"] == 2
    assert len(letters.read_text(encoding="utf-8").splitlines()[0]) > 4096

    monkeypatch.setenv(Env.CRM_API_TOKEN, crm_env.token)
    again = run_json([str(letters)], capsys)  # the file it wrote itself
    assert again["events"] == 2
    assert again["failed"] == {}
    assert again["applied_by"]["created"] == 1  # the update then has nothing new to write
    [contact] = crm_env.contacts()
    assert (contact["name"], contact["email"]) == ("Ada Lovelace", "ada@example.com")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_progress_line_on_a_terminal_and_none_in_a_pipe(
    crm_env: CrmServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["user_created", "user_updated_partial", "malformed_missing_user_id"]
    path = written(tmp_path / "events.jsonl", "\n".join(json.dumps(load_event(n)) for n in names))

    assert main(["process", path]) == 1  # a pipe (pytest's capture): no progress line
    assert "\r" not in capsys.readouterr().err

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["process", path, "--dead-letters", str(tmp_path / "again.jsonl")]) == 1
    drawn = terminal.getvalue()
    assert "\rprocess [" in drawn
    assert "3/3" in drawn  # every event counted
    # The dead letter's own line starts on a cleared line, not after the bar.
    assert re.search(r"\r\x1b\[Kevt_\S+ +user\.updated .*dead-lettered: invalid_event", drawn)
    assert drawn.endswith("\r\x1b[K")  # the bar is erased when the run ends
