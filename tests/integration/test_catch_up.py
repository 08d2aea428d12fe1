"""`auth0-sync catch-up` against the fake Events API (Server-Sent Events over HTTP), moto's
state table and the reference CRM: a planted delivery gap is recovered, events that did
arrive cost nothing, and the API's 429 and 410 answers are handled as documented."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auth0_sync.names import Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import bus_event
from tests.fakes.auth0_mgmt import FakeAuth0
from tests.integration.helpers import invoke
from tests.integration.initial_sync import contact_of, contacts

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def change(kind: str, user: str, minutes: int, name: str) -> dict[str, Any]:
    """A bus event of user `user` at T0 + minutes (its CloudEvent is what the API keeps)."""
    moment = T0 + timedelta(minutes=minutes)
    stamp = moment.isoformat().replace("+00:00", "Z")
    profile = {
        "user_id": f"auth0|{user}",
        "email": f"{user}@example.com",
        "name": name,
        "created_at": T0.isoformat().replace("+00:00", "Z"),
        "updated_at": stamp,
    }
    return bus_event(f"user.{kind}", profile, moment, f"evt_{user}_{minutes:03d}")


@pytest.fixture
def tenant(sync_env: LocalResources, monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeAuth0() as fake:
        monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
        monkeypatch.setenv(Env.AUTH0_MGMT_TOKEN, fake.issue_token())
        yield fake


def catch_up(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["catch-up", *argv, "--rate", "1000", "--idle", "2", "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code in (0, 1) else {"err": captured.err}


def test_a_planted_gap_is_recovered_and_what_arrived_costs_nothing(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    arrived = change("created", "ada", 0, "Ada")
    gap = [change("updated", "ada", 10, "Ada Lovelace"), change("created", "bob", 20, "Bob")]
    later = change("updated", "ada", 90, "Ada After The Window")
    assert invoke(arrived)["status"] == "applied"  # delivered before the stream stopped
    for event in (arrived, *gap, later):
        tenant.add_event(event["detail"])
    tenant.events_per_connection = 2  # the stream closes; the client goes on from its offset

    code, report = catch_up(
        capsys, "--since", "2026-03-01T08:55:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 0, report
    assert report["by_type"] == {"user.created": 2, "user.updated": 1}
    assert report["reasons"] == {
        "create:created": 1,
        "unchanged:duplicate": 1,
        "update:updated": 1,
    }
    assert contact_of(crm, "auth0|ada")["name"] == "Ada Lovelace"
    assert contact_of(crm, "auth0|bob")["name"] == "Bob"
    assert len(contacts(crm)) == 2
    reads = [r for r in tenant.api_requests() if r.path == "/api/v2/events"]
    assert reads[0].query["from_timestamp"] == "2026-03-01T08:55:00Z"
    assert reads[0].query["event_type"] == "user.created,user.updated,user.deleted"
    assert len(reads) >= 2
    assert "from_timestamp" not in reads[1].query  # the offset says where to go on


def test_a_second_catch_up_of_the_same_window_costs_no_crm_call(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in (change("created", "cy", 5, "Cy"), change("updated", "cy", 6, "Cy Two")):
        tenant.add_event(event["detail"])
    window = ("--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z")
    assert catch_up(capsys, *window)[0] == 0
    before = crm.stats()["by_method"]

    code, report = catch_up(capsys, *window)

    assert code == 0
    # The last event applied is a duplicate; the one before it is older than that: stale.
    assert report["reasons"] == {"unchanged:duplicate": 1, "skipped:stale": 1}
    assert report["crm_calls"] == 0
    assert crm.stats()["by_method"] == before


def test_a_429_is_waited_out(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.add_event(change("created", "dee", 5, "Dee")["detail"])
    tenant.fail_next("GET", "/api/v2/events", 429, headers={"Retry-After": "0"})

    code, report = catch_up(capsys, "--since", "2026-03-01T09:00:00Z")

    assert code == 0, report
    assert contact_of(crm, "auth0|dee")["name"] == "Dee"


def test_an_expired_offset_says_to_start_again_from_a_time(
    tenant: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.add_event(change("created", "eve", 5, "Eve")["detail"])
    tenant.expired_offsets.add("ofs_000000")

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--last-event-id", "ofs_000000"
    )

    assert code == 2
    assert "410 Gone: the offset ofs_000000 is older than the Events API keeps" in report["err"]
    assert "--since TIME" in report["err"]
    assert "Traceback" not in report["err"]


def test_a_window_that_ends_before_it_starts_is_refused(
    tenant: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["catch-up", "--since", "2026-03-02T00:00:00Z", "--until", "2026-03-01"])

    assert code == 2
    assert "is not after --since" in capsys.readouterr().err
