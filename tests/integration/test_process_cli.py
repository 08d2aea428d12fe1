"""`auth0-sync process` as a user runs it: input formats, clear input errors, counts."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import generate, reconcile
from tests.conftest import load_event

pytestmark = pytest.mark.integration


@pytest.fixture
def crm_env(crm: CrmServer, monkeypatch: pytest.MonkeyPatch) -> CrmServer:
    monkeypatch.setenv(Env.CRM_BASE_URL, crm.base_url)
    monkeypatch.setenv(Env.CRM_API_TOKEN, crm.token)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    return crm


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["process", *args, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return result


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
    result = run_json([str(path)], capsys)
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
    assert "nope.jsonl: cannot read" in capsys.readouterr().err
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
    assert result["skipped"]["duplicate"] >= 2 * len(sample.events)
    assert reconcile(sample.truth, crm_env.contacts()) == []


def test_outage_is_retried_like_lambda_then_dead_lettered_within_the_timeout(
    crm_env: CrmServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crm_env.set_outage(503)
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(load_event("user_created")))
    result = run_json([str(path), "--timeout", "1.8"], capsys)
    assert result["failed"] == {"crm_503": 1}
    # Three invocations (the first and Lambda's two retries), each retrying within its budget.
    assert crm_env.stats()["by_status"]["503"] >= 3


def test_timeout_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["process", "x.jsonl", "--timeout", "0"])
    assert "--timeout: must be > 0, got 0" in capsys.readouterr().err
