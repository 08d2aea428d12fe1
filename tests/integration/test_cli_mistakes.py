"""Each mistake a user makes with the CLI, as they make it: the command in its own process,
one line on stderr naming the setting and what to do, the documented exit code, and no
traceback (issue 18, items 2 and 3). The busy ports are in test_crm_server and
test_local_aws."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from tests.conftest import EVENTS_DIR, load_event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EVENT = str(EVENTS_DIR / "user_created.json")  # one pretty-printed event


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home: no ~/.aws of the developer's own can answer for the test."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment without any AWS or CRM settings, and no instance metadata lookup
    (off loopback) when boto3 looks for credentials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CRM_")) and k not in {e.value for e in Env}
    }
    return {
        **env,
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **extra,
    }


def cli(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auth0_sync_cli.main", *args],
        env=env,
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str], prog: str) -> str:
    """The single stderr line, checked for shape; returned without its prefix."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"auth0-sync {prog}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound by this test and not listening: connections are refused, and
    no other process can take it meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


CRM = {Env.CRM_BASE_URL.value: "http://127.0.0.1:9", Env.CRM_API_TOKEN.value: "t"}
AWS_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_no_region(home: Path) -> None:
    result = cli(clean_env(home, **CRM, **AWS_KEYS), "process", EVENT, "--state", "aws")

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        "no AWS region: pass --region REGION or set AWS_DEFAULT_REGION (e.g. eu-west-1); "
        "against local-aws, run the export lines it prints"
    )


def test_an_empty_aws_default_region(home: Path) -> None:
    env = clean_env(home, **CRM, **AWS_KEYS, AWS_DEFAULT_REGION="")

    result = cli(env, "process", EVENT, "--state", "aws")

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        "AWS_DEFAULT_REGION is set but empty: unset it, set it to a region (e.g. eu-west-1), "
        "or pass --region"
    )


def test_no_credentials(home: Path) -> None:
    result = cli(
        clean_env(home, **CRM), "process", EVENT, "--state", "aws", "--region", "eu-west-1"
    )

    assert result.returncode == 2
    assert one_error_line(result, "process").startswith(
        "no AWS credentials: pass --profile NAME, or set AWS_PROFILE, or AWS_ACCESS_KEY_ID "
        "and AWS_SECRET_ACCESS_KEY"
    )


def test_an_unknown_profile(home: Path) -> None:
    result = cli(clean_env(home, **CRM), "process", EVENT, "--state", "aws", "--profile", "nope")

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        "AWS profile 'nope' not found: fix --profile or AWS_PROFILE "
        "(`aws configure list-profiles` lists them)"
    )


def test_local_aws_not_running(home: Path, refusing_port: int) -> None:
    endpoint = f"http://127.0.0.1:{refusing_port}"
    env = clean_env(
        home, **CRM, **AWS_KEYS, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint
    )

    result = cli(env, "process", EVENT)

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        f"cannot reach AWS at {endpoint}/: is `auth0-sync local-aws` running there? "
        "(AWS_ENDPOINT_URL says so; unset it to use AWS itself)"
    )


def test_a_crm_base_url_that_is_not_a_url(home: Path) -> None:
    env = clean_env(home, **{**CRM, Env.CRM_BASE_URL.value: "not-a-url"})

    result = cli(env, "process", EVENT)

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        "configuration: CRM_BASE_URL='not-a-url' is not an http(s) URL with a host: set it "
        "to the CRM's base URL, e.g. http://127.0.0.1:8080 as `auth0-sync crm-server` prints it"
    )


def test_no_crm_base_url(home: Path) -> None:
    result = cli(clean_env(home, CRM_API_TOKEN="t"), "process", EVENT)

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        "configuration: invalid configuration: CRM_BASE_URL: Field required"
    )


def test_an_unreadable_input_line(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": \xff}\n')

    result = cli(clean_env(home, **CRM), "process", str(path))

    assert result.returncode == 2
    assert one_error_line(result, "process") == (
        f"{path}:2: not UTF-8 text (byte 0xff at column 8); save the file as UTF-8"
    )


def test_an_empty_input_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"")

    result = cli(clean_env(home, **CRM), "process", str(path))

    assert result.returncode == 2
    assert one_error_line(result, "process") == f"{path}: no events: the file is empty"


def test_a_wrong_crm_token_dead_letters_every_event_and_exits_1(
    home: Path, tmp_path: Path, crm: CrmServer
) -> None:
    env = clean_env(home, CRM_BASE_URL=crm.base_url, CRM_API_TOKEN="a-wrong-token")

    result = cli(env, "process", EVENT, "--json", cwd=tmp_path)

    assert result.returncode == 1
    # One line for the event: its id and the reason, which says where the credential lives.
    [line] = result.stderr.splitlines()
    assert line.startswith(json.loads(Path(EVENT).read_text(encoding="utf-8"))["detail"]["id"])
    assert "dead-lettered: crm_credentials_rejected: " in line
    assert "CRM_TOKEN_SECRET_ARN" in line
    assert "a-wrong-token" not in line
    report = json.loads(result.stdout)
    assert report["failed"] == {"crm_credentials_rejected": 1}
    letters = Path(report["dead_letters"]["file"])
    assert json.loads(letters.read_text(encoding="utf-8"))["reason"] == "crm_credentials_rejected"


def test_an_outage_prints_one_line_per_event_with_its_id_and_reason(
    home: Path, tmp_path: Path, crm: CrmServer
) -> None:
    events = tmp_path / "events.jsonl"
    chosen = ["user_created", "user_deleted_full"]
    events.write_text(
        "".join(json.dumps(load_event(name)) + "\n" for name in chosen), encoding="utf-8"
    )
    crm.set_outage(503)
    env = clean_env(home, CRM_BASE_URL=crm.base_url, CRM_API_TOKEN=crm.token)
    env.pop("POWERTOOLS_LOG_LEVEL")  # as a user runs it: the handlers' own level

    result = cli(env, "process", str(events), "--timeout", "1", "--json", cwd=tmp_path)

    assert result.returncode == 1
    assert json.loads(result.stdout)["failed"] == {"crm_503": 2}
    lines = result.stderr.splitlines()
    ids = [load_event(name)["detail"]["id"] for name in chosen]
    assert [line.split()[0] for line in lines] == ids  # one line each, nothing else
    assert all("dead-lettered: crm_503: " in line for line in lines)


def test_a_closed_output_pipe_exits_141_quietly_and_keeps_the_dead_letters(
    home: Path, tmp_path: Path, crm: CrmServer
) -> None:
    env = clean_env(home, CRM_BASE_URL=crm.base_url, CRM_API_TOKEN="a-wrong-token")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        result = subprocess.run(
            [sys.executable, "-m", "auth0_sync_cli.main", "process", EVENT],
            env=env,
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)

    assert result.returncode == 141
    # No "Broken pipe", no traceback: only the event's own dead-letter line (stderr is open).
    [line] = result.stderr.splitlines()
    assert "dead-lettered: crm_credentials_rejected: " in line
    folder = Path(os.environ["XDG_STATE_HOME"]) / "auth0-sync"
    [letters] = list(folder.glob("dead-letters-*.jsonl"))
    assert json.loads(letters.read_text(encoding="utf-8"))["reason"] == "crm_credentials_rejected"


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["dlq", "list", "--help"],
        ["demo", "--users", "5", "--cases", "none"],
        ["sandbox"],
        ["local-aws", "--port", "0"],
        ["crm-server", "--port", "0"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_every_command_exits_141_quietly_when_its_reader_is_gone(
    home: Path, tmp_path: Path, args: list[str]
) -> None:
    # `auth0-sync demo | head -20`: the servers' banners and the demo's story too.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "auth0_sync_cli.main", *args],
            env=clean_env(home),
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)

    assert (result.returncode, result.stderr) == (141, "")


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--plot", "{missing}/timeline.png"],
        ["reconcile", "--csv", "{missing}/drift.csv"],
        ["reconcile", "--save-export", "{missing}/users.json.gz"],
        ["backfill", "--save-export", "{missing}/users.json.gz"],
        ["backfill", "--checkpoint", "{missing}/backfill.ckpt"],
        ["dlq", "delete", "evt_x", "--reason", "r", "--export", "{missing}/deleted.jsonl"],
    ],
    ids=lambda args: f"{args[0]} {args[-2]}",
)
def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(
    home: Path, tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "no-such-folder"
    argv = [a.format(missing=missing) for a in args]

    result = cli(clean_env(home), *argv, cwd=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""  # the demo's story never started
    assert result.stderr.splitlines()[-1].endswith(
        f"no folder {missing} for {Path(argv[-1]).name}: create it first"
    )


def test_an_output_path_that_is_a_folder_is_refused(home: Path, tmp_path: Path) -> None:
    result = cli(clean_env(home), "demo", "--plot", str(tmp_path), cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(f"{tmp_path} is a folder; give a file name")


def test_debug_adds_the_traceback_to_the_same_line(home: Path) -> None:
    env = clean_env(home, **CRM, **AWS_KEYS)

    result = cli(env, "process", EVENT, "--state", "aws", "--debug")

    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "botocore.exceptions.NoRegionError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("auth0-sync process: error: no AWS region")
