"""`auth0-sync sandbox` as the README's "Try it by hand" uses it: its lines pasted into a shell
make `process`, `dlq list` and `replay` work, its curl lines cause the CRM's faults, and
Ctrl-C leaves nothing listening."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_demo import CLI, REPO, _start, clean_env, listening

pytestmark = pytest.mark.e2e

EVENTS = REPO / "tests" / "events"
USER_ID = "auth0|65e5a1f0c2b7d94e1a3f0c11"  # the user of tests/events/user_*.json


@pytest.fixture
def sandbox() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process, output = _start(["sandbox"], clean_env(), "Ctrl-C stops both servers")
    try:
        yield process, output
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def in_shell(shell_lines: str, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in bash after the sandbox's lines, as a user who pasted them would run it.
    The shell starts with a stale CRM token and AWS profile of an earlier session, which
    the sandbox's lines must clear."""
    env = clean_env(CRM_API_TOKEN="a-stale-token", AWS_PROFILE="no-such-profile")
    return subprocess.run(
        ["bash", "-c", f"set -e\n{shell_lines}\n{command}"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def curl_line(output: str, comment: str) -> str:
    """The curl line the sandbox printed under `# <comment>...`."""
    found = re.search(rf"^# {re.escape(comment)}.*\n(curl .*)$", output, flags=re.M)
    assert found is not None, output
    return found.group(1)


def test_the_sandboxs_lines_run_an_event_a_fault_and_a_replay_by_hand(
    sandbox: tuple[subprocess.Popen[str], str],
) -> None:
    process, output = sandbox
    lines = "\n".join(re.findall(r"^(?:export|unset) .*$", output, flags=re.M))
    ports = [int(p) for p in re.findall(r"on http://127\.0\.0\.1:(\d+)", output.splitlines()[0])]
    assert len(ports) == 2
    cli = " ".join(CLI)

    created = in_shell(lines, f"{cli} process {EVENTS / 'user_created.json'}")
    assert created.returncode == 0, created.stderr
    assert re.search(r"applied\s+1\s+\(created 1\)", created.stdout)
    contacts = json.loads(in_shell(lines, curl_line(output, "every contact")).stdout)
    assert [c["auth0_user_id"] for c in contacts] == [USER_ID]

    outage = in_shell(lines, curl_line(output, "outage: every CRM request answers 503"))
    assert json.loads(outage.stdout)["outage"] == 503
    failed = in_shell(
        lines, f"{cli} process {EVENTS / 'user_deleted_full.json'} --timeout 2 --json"
    )
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)["failed"] == {"crm_503": 1}
    listed = in_shell(lines, f"{cli} dlq list --json")
    assert [m["reason"] for m in json.loads(listed.stdout)] == ["crm_503"]

    in_shell(lines, curl_line(output, "outage over"))
    replayed = in_shell(lines, f"{cli} replay")
    assert replayed.returncode == 0, replayed.stderr
    assert re.search(r"applied\s+1\s+\(deactivated 1\)", replayed.stdout)
    contacts = json.loads(in_shell(lines, curl_line(output, "every contact")).stdout)
    assert [c["status"] for c in contacts] == ["deactivated"]

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert [port for port in ports if listening(port)] == []


def test_the_readme_walks_from_the_sandbox_to_a_replayed_dlq() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it by hand", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\$ (auth0-sync \S+)", section, flags=re.M)
    assert commands[0] == "auth0-sync sandbox"
    assert "auth0-sync process" in commands
    assert commands[-2:] == ["auth0-sync replay", "auth0-sync dlq"]
    assert Path(REPO / "tests/events/user_created.json").exists()
