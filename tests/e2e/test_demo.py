"""The whole pipeline through the CLI, as a user runs it: `auth0-sync demo`, then the
commands one by one (crm-server, local-aws, process, dlq list, replay) in their own processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

from auth0_sync.names import LOCAL_CRM_TOKEN, Env
from auth0_sync_cli.demo import EXISTING_SHARE
from auth0_sync_cli.sample import ALL_CASES, SampleStream, generate
from auth0_sync_cli.truth import list_contacts, reconcile

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "auth0_sync_cli.main"]
QUIET = {
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any AWS or CRM settings of the developer's own."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CRM_")) and k not in {e.value for e in Env}
    }
    return {**env, **QUIET, **extra}


def run_demo(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    result = subprocess.run(
        [*CLI, "demo", "--users", "40", *args],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # With --json the story (and its reconciliation table) is on stderr.
    story = result.stderr if "--json" in args else result.stdout
    rows = dict(re.findall(r"^\s{4}(\S.*?\S)\s{2,}(\d+)\s", story, flags=re.MULTILINE))
    return result, rows


def the_sample(cases: Sequence[str]) -> SampleStream:
    """The stream `demo --users 40` generates (seed 7), users from before it included."""
    return generate(40, seed=7, cases=cases, existing_share=EXISTING_SHARE)


def backfill_line(sample: SampleStream) -> str:
    """The backfill step's counts, from the generator's model: a user from before whose
    email a contact from before holds is linked to it, every other one gets a new contact."""
    users = [sample.people[str(u["user_id"])] for u in sample.existing]
    linked = sum(1 for person in users if person.claims is not None)
    assert 0 < linked < len(users)  # both ways are in the demo
    return f"backfill: {len(users)} users: create {len(users) - linked}, link {linked}, update 0;"


def unclaimed_bystanders(sample: SampleStream) -> int:
    """Active contacts from before that no identity of the model claims."""
    claimed = {p.claims for p in sample.people.values() if p.claims is not None}
    return sum(
        1
        for index, item in enumerate(sample.preexisting)
        if index not in claimed and item.fields.get("status", "active") == "active"
    )


def test_demo_of_the_simple_stream_ends_in_step_with_nothing_lost(tmp_path: Path) -> None:
    # One run for the story and for --json/--plot (a demo run costs half a minute).
    plot = tmp_path / "timeline.png"
    result, rows = run_demo("--cases", "none", "--json", "--plot", str(plot))

    out = result.stderr  # the story; stdout holds the one JSON document
    assert result.returncode == 0, result.stdout + out
    assert rows["Mismatches"] == "0"
    assert rows["Organization mismatches"] == "0"  # companies and memberships, both ways
    assert rows["Lost events"] == "0"
    assert rows["Auth0 users (truth)"] == "40"
    # The outage filled the DLQ; the replay drained it down to the malformed event.
    assert int(rows["DLQ before replay"]) > 1
    assert rows["DLQ after replay"] == "1"
    assert "the malformed event (poison" in out
    assert "OK: the CRM equals the Auth0 truth" in out
    assert '"level"' not in out  # no JSON log lines in the story
    # The users from before the stream were backfilled before it, as a step of the story,
    # and the final `reconcile` (export vs CRM listing vs sync state) finds nothing.
    sample = the_sample(())
    assert re.search(r"^ ?\d+\. Backfill the \d+ users from before the stream", out, re.M)
    assert backfill_line(sample) in out
    assert re.search(r"auth0-sync reconcile: \d+ Auth0 users, .*: in step$", out, re.M)
    the_json_document_and_the_plot(result, plot)


def the_json_document_and_the_plot(result: subprocess.CompletedProcess[str], plot: Path) -> None:
    document = json.loads(result.stdout)  # nothing else on stdout: the story is on stderr
    rows = {row["name"]: row["value"] for row in document["reconciliation"]}
    assert (document["exit_code"], document["ok"]) == (0, True)
    assert (rows["Mismatches"], rows["Lost events"], rows["DLQ after replay"]) == (0, 0, 1)
    assert document["counts"]["users"] == 40
    assert document["counts"]["dlq_after_replay"] == 1
    users = [str(u["user_id"]) for u in the_sample(()).existing]
    backfilled = document["counts"]["backfill"]
    assert backfilled["users"] == len(users)
    assert backfilled["counts"]["create"] + backfilled["counts"]["link"] == len(users)
    assert backfilled["counts"]["failed"] == 0
    assert document["counts"]["reconcile"]["in_step"] is True
    assert set(document["counts"]["reconcile"]["drift"].values()) == {0}
    assert document["plot"] == str(plot)
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("crm", ["default", "unique-emails"])
def test_demo_with_every_lifecycle_ends_in_step_with_nothing_lost(crm: str) -> None:
    # Also against a CRM that refuses a PATCH to an email another contact holds (an email
    # swap between two users then has to resolve itself).
    result, rows = run_demo(*(["--unique-emails"] if crm == "unique-emails" else []))

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    people = generate(40, seed=7, cases=ALL_CASES).people
    assert rows["Auth0 users (truth)"] == str(len(people))
    assert rows["Mismatches"] == "0"
    assert rows["Lost events"] == "0"
    assert rows["DLQ after replay"] == "1"
    assert "OK: the CRM equals the Auth0 truth" in out
    sample = the_sample(ALL_CASES)
    assert backfill_line(sample) in out
    # The only drift `reconcile` may report: the bystanders, contacts nobody claims.
    bystanders = unclaimed_bystanders(sample)
    assert bystanders > 0
    assert re.search(
        rf"auth0-sync reconcile: .*: drift unclaimed {bystanders} \(contacts from before", out
    )


# What each vendor's story says in its own steps (written out, not read from the code).
VENDOR_STORY = {
    "hubspot": (
        "a fake HubSpot",
        "HubSpot's rolling limit lowered to 50 calls per 10 s (5/s)",
    ),
    "salesforce": (
        "a fake Salesforce org",
        "No rate-limit phase (Salesforce has no per-second request limit: its over-limit "
        "answer is 403 REQUEST_LIMIT_EXCEEDED",
    ),
}


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_demo_against_a_vendor_fake_ends_in_step_with_nothing_lost(crm: str) -> None:
    # The whole story through the vendor's adapter: backfill, stream, faults, replay, and
    # the truth read back from the fake's own records in the vendor's field names.
    result, rows = run_demo("--crm", crm, "--json")

    out = result.stderr  # the story; stdout holds the one JSON document
    assert result.returncode == 0, result.stdout + out
    document = json.loads(result.stdout)
    assert (document["crm"], document["ok"], document["counts"]["crm"]) == (crm, True, crm)
    assert document["counts"]["mismatches"] == 0
    name, rate_phase = VENDOR_STORY[crm]
    assert f"the CRM is {name})" in out
    assert f"1. Start {name} (CRM_TYPE={crm}) and local AWS on loopback" in out
    assert rate_phase in out
    # The healthy step is healthy: the client keeps under the CRM's window, no 429 met.
    healthy = re.search(r"CRM healthy: events \S+\n\s+(.*)\n", out)
    assert healthy is not None, out
    assert "429" not in healthy.group(1), healthy.group(1)
    people = generate(40, seed=7, cases=ALL_CASES).people
    assert rows["Auth0 users (truth)"] == str(len(people))
    assert rows["Mismatches"] == "0"
    assert rows["Lost events"] == "0"
    assert int(rows["DLQ before replay"]) > 1  # the outage dead-lettered events
    assert rows["DLQ after replay"] == "1"
    assert "OK: the CRM equals the Auth0 truth" in out
    sample = the_sample(ALL_CASES)
    assert backfill_line(sample) in out
    # reconcile read the vendor's listing: only the bystanders are left for a person.
    bystanders = unclaimed_bystanders(sample)
    assert re.search(
        rf"auth0-sync reconcile: .*: drift unclaimed {bystanders} \(contacts from before", out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--crm", "pipedrive"],
            # Our parser's own wording (it adds "did you mean" when a choice is close).
            r"auth0-sync demo: error: argument --crm: invalid choice: 'pipedrive'; choose "
            r"from 'rest', 'hubspot', 'salesforce'$",
        ),
        (
            ["--crm", "hubspot", "--unique-emails"],
            r"auth0-sync demo: error: --unique-emails is the reference CRM's mode \(--crm rest\); "
            r"HubSpot and Salesforce have their own uniqueness rules",
        ),
    ],
)
def test_a_wrong_crm_is_argparses_one_line_error(args: list[str], message: str) -> None:
    result = subprocess.run(
        [*CLI, "demo", *args],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing started


def test_ctrl_c_stops_the_demo_and_everything_it_started() -> None:
    process = subprocess.Popen(
        [*CLI, "demo", "--users", "40", "--cases", "none"],
        env=clean_env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        # Ctrl-C's default action, whatever the test runner's shell set for its children.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if "Deliver events" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=20)
    assert process.returncode == 130, seen + rest
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", seen)]
    assert len(ports) == 2
    # Both servers are gone: nothing listens on their ports any more. (Binding the port
    # again is no test of that: the connections the exit closed may hold it in TIME_WAIT.)
    assert [port for port in ports if listening(port)] == []


def listening(port: int) -> bool:
    """Whether a TCP socket on this machine listens on `port` (Linux's /proc/net/tcp*;
    elsewhere, whether the port cannot be bound)."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return True
            return False
    for table in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                return True
    return False


def _start(
    args: Sequence[str], env: dict[str, str], ready: str
) -> tuple[subprocess.Popen[str], str]:
    """Start a long-running CLI command; returns it and its output up to the `ready` line."""
    process = subprocess.Popen([*CLI, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if ready in line:
            # Keep reading, so a chatty server never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process, seen
    raise AssertionError(f"{args[0]} did not start: {seen}")


@pytest.fixture
def servers() -> Iterator[dict[str, str]]:
    """`auth0-sync crm-server` and `auth0-sync local-aws` as their own processes."""
    started: list[subprocess.Popen[str]] = []
    try:
        crm, banner = _start(["crm-server", "--port", "0"], clean_env(), "listening on")
        started.append(crm)
        crm_url = re.search(r"listening on (\S+)", banner)
        assert crm_url is not None
        aws, exports = _start(["local-aws", "--port", "0"], clean_env(), "Ctrl-C to stop")
        started.append(aws)
        env = clean_env(**dict(re.findall(r"^export (\w+)=(\S*)$", exports, flags=re.M)))
        env[Env.CRM_BASE_URL] = crm_url.group(1)
        yield env
    finally:
        for process in started:
            process.terminate()
            process.wait(timeout=10)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def admin(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    response = requests.request(
        method,
        f"{env[Env.CRM_BASE_URL]}/_admin/{path}",
        json=body,
        headers={"Authorization": f"Bearer {LOCAL_CRM_TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def write_events(path: Path, events: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return str(path)


def test_replay_drains_a_dlq_filled_while_the_crm_was_failing(
    servers: dict[str, str], tmp_path: Path
) -> None:
    sample = generate(9, seed=11, specials=False, preexisting_share=0)
    users = sorted(sample.truth.users)
    healthy = [e for e in sample.events if e["detail"]["data"]["object"]["user_id"] in users[:6]]
    rejected = [e for e in sample.events if e not in healthy]
    # The last user's signup comes while the CRM is down; its later changes are rejected.
    down = [next(e for e in rejected if e["detail"]["type"] == "user.created")]
    rejected = [e for e in rejected if e is not down[0]]

    ran = cli(servers, "process", write_events(tmp_path / "a.jsonl", healthy), "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["failed"] == {}

    # A permission the token lacks: permanent (a refused token would be transient).
    admin(servers, "POST", "outage", {"enabled": True, "status": 403})
    ran = cli(servers, "process", write_events(tmp_path / "b.jsonl", rejected), "--json")
    assert json.loads(ran.stdout)["failed"] == {"crm_403": len(rejected)}
    admin(servers, "POST", "outage", {"enabled": True, "status": 503})  # then down
    # A one-second time budget: the outage is not waited out for the default budget's seconds.
    ran = cli(
        servers, "process", write_events(tmp_path / "c.jsonl", down), "--json", "--timeout", "1"
    )
    assert json.loads(ran.stdout)["failed"] == {"crm_503": 1}

    listed = cli(servers, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert len(records) == len(rejected) + 1
    assert {(r["shape"], r["reason"].split(":")[0]) for r in records} == {
        ("handler", "crm_403"),
        ("on_failure", "crm_503"),
    }
    assert {r["event_id"] for r in records} == {e["detail"]["id"] for e in [*rejected, *down]}

    admin(servers, "POST", "outage", {"enabled": False})
    replayed = cli(servers, "replay", "--json")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    report = json.loads(replayed.stdout)
    assert report["messages_deleted"] == len(records)
    assert report["failed"] == {}
    assert report["left"] == []

    assert json.loads(cli(servers, "dlq", "list", "--json").stdout) == []
    contacts = list_contacts(servers[Env.CRM_BASE_URL], LOCAL_CRM_TOKEN)
    assert reconcile(sample.truth, contacts) == []
