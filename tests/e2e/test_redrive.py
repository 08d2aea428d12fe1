"""The outage heals itself: events dead-lettered while the CRM was down are drained by one
`auth0-sync redrive` once it is back, and a permanent failure stays for a person. Every
command in its own process, against `local-aws` and `crm-server`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from auth0_sync_cli.sample import generate, reconcile
from tests.e2e.test_demo import admin, cli, write_events

pytestmark = pytest.mark.e2e


def test_one_redrive_drains_the_outage_and_leaves_the_permanent_failure(
    servers: dict[str, str], tmp_path: Path
) -> None:
    sample = generate(8, seed=3, specials=False, preexisting_share=0, updates_per_user=(1, 3))
    users = sorted(sample.truth.users)
    owner = {e["detail"]["id"]: e["detail"]["data"]["object"]["user_id"] for e in sample.events}
    healthy = [e for e in sample.events if owner[e["detail"]["id"]] in users[:5]]
    down = [e for e in sample.events if owner[e["detail"]["id"]] in users[5:7]]
    rejected = [e for e in sample.events if owner[e["detail"]["id"]] == users[7]]

    ran = cli(servers, "process", write_events(tmp_path / "a.jsonl", healthy), "--json")
    assert ran.returncode == 0, ran.stderr
    # A permission the token lacks (a refused token is transient: the redrive retries it).
    admin(servers, "POST", "outage", {"enabled": True, "status": 403})
    cli(servers, "process", write_events(tmp_path / "b.jsonl", rejected), "--json")
    admin(servers, "POST", "outage", {"enabled": True, "status": 503})  # then down
    ran = cli(
        servers, "process", write_events(tmp_path / "c.jsonl", down), "--json", "--timeout", "1"
    )
    assert json.loads(ran.stdout)["failed"] == {"crm_503": len(down)}

    # Still down: the redrive probes once and waits.
    waiting = cli(servers, "redrive", "--json")
    assert waiting.returncode == 1, waiting.stderr
    assert json.loads(waiting.stdout)["redriven"] == 0

    admin(servers, "POST", "outage", {"enabled": False})
    redriven = cli(servers, "redrive", "--json")
    assert redriven.returncode == 1, redriven.stderr  # the permanent failure needs a person
    report = json.loads(redriven.stdout)
    assert (report["redriven"], report["still_failing"]) == (len(down), 0)
    # Counted per event: a redelivered (duplicated) event is one, however many messages.
    assert report["left"] == {"crm_403": len({e["detail"]["id"] for e in rejected})}

    listed = json.loads(cli(servers, "dlq", "list", "--json").stdout)
    assert {(r["shape"], r["reason"]) for r in listed} == {("handler", "crm_403")}
    assert sorted(r["event_id"] for r in listed) == sorted(e["detail"]["id"] for e in rejected)
    # The rejected user never reached the CRM: the truth of the other seven is checked.
    in_step = replace(sample.truth, users={u: sample.truth.users[u] for u in users[:7]})
    assert reconcile(in_step, admin(servers, "GET", "contacts")) == []
