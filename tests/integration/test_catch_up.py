"""`auth0-sync catch-up` against the fake Events API (Server-Sent Events over HTTP), moto's
state table and the reference CRM: a planted delivery gap is recovered, events that did
arrive cost nothing, and the API's 429 and 410 answers are handled as documented.

The fake speaks the stream as Auth0 documents it (see tests/fakes/auth0_mgmt.py: each
`data` is `{"offset", "event": {CloudEvent}}`, `event: offset-only` heartbeats once caught
up, a connection that stays open until the server closes it), so a catch-up that does not
stop by itself past `--until` shows as a connection the server had to end, or as the
fake's 503 once its `refuse_after_connections` is used up."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import bus_event
from tests.cli_support import auth0_env
from tests.fakes.auth0_mgmt import FakeAuth0, offset_of
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
        auth0_env(fake, monkeypatch)
        yield fake


def catch_up(
    capsys: pytest.CaptureFixture[str], *argv: str, idle: float = 2
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["catch-up", *argv, "--rate", "1000", "--idle", str(idle), "--json"])
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
    # "Specify multiple times for multiple types" (the API page): one parameter per type.
    assert reads[0].query_lists["event_type"] == ["user.created", "user.updated", "user.deleted"]
    assert len(reads) == 2
    assert "from_timestamp" not in reads[1].query  # the offset says where to go on
    assert reads[1].headers["Last-Event-Id"] == offset_of(1)
    assert report["last_event_id"] == offset_of(2)  # bob's; the one past --until is not taken


def test_independent_users_go_in_batch_calls_and_each_users_events_in_order(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # 24 users created in the gap (with single calls one create request each; in batches
    # of 8, 4 when full), and one user created then renamed twice, whose events must
    # apply in order: the last name is the one kept. (The contract's batch operations
    # carry no If-Match: the renames are one guarded PATCH each.)
    people = [f"p{n:02d}" for n in range(24)]
    for n, person in enumerate(people):
        tenant.add_event(change("created", person, n, "First")["detail"])
    for minutes, name in ((1, "Ada"), (30, "Ada Second"), (31, "Ada Third")):
        kind = "created" if minutes == 1 else "updated"
        tenant.add_event(change(kind, "ada", minutes, name)["detail"])
    crm.reset_stats()

    code, report = catch_up(
        capsys,
        "--since",
        "2026-03-01T08:55:00Z",
        "--until",
        "2026-03-01T10:00:00Z",
        "--batch-size",
        "8",
    )

    assert code == 0, report
    assert report["counts"] == {"create": 25, "update": 2}, report["reasons"]
    assert contact_of(crm, "auth0|ada")["name"] == "Ada Third"
    assert len(contacts(crm)) == 25
    # 25 creates in batches of 8 (4 when full, a partial one or two), then ada's two
    # renames: a read and a guarded PATCH, and a PATCH. One at a time: 28.
    assert crm.stats()["total"] <= 10, crm.stats()
    assert report["last_event_id"] == offset_of(26)  # the last of the 27


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


def connection_ends(tenant: FakeAuth0, count: int) -> list[str]:
    """How the fake's connections ended, once `count` of them have (the fake learns that
    the client hung up at its next write)."""
    deadline = time.monotonic() + 5
    while len(tenant.connection_ends) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(tenant.connection_ends)


def test_events_in_the_documented_shape_are_applied_and_a_heartbeat_past_until_ends_it(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole window is in the past and every event is inside it: nothing but offset-only
    # heartbeats follow, on connections the server keeps open, then closes, forever.
    for event in (change("created", "fay", 5, "Fay"), change("updated", "fay", 15, "Fay F")):
        tenant.add_event(event["detail"])
    tenant.connection_seconds = 0.5
    tenant.refuse_after_connections = 5

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 0, report
    assert report["by_type"] == {"user.created": 1, "user.updated": 1}
    assert report["reasons"] == {"create:created": 1, "update:updated": 1}
    assert contact_of(crm, "auth0|fay")["name"] == "Fay F"
    # The heartbeat's offset is kept: a later catch-up goes on from there.
    assert report["last_event_id"] == offset_of(1)
    assert len([r for r in tenant.api_requests() if r.path == "/api/v2/events"]) == 1
    assert connection_ends(tenant, 1) == ["client"]


def test_comment_heartbeats_alone_end_the_read_after_the_idle_time(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.add_event(change("created", "gus", 5, "Gus")["detail"])
    tenant.comment_heartbeats = True  # `: heartbeat` every 50 ms: the read never times out
    tenant.connection_seconds = 8

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z", idle=1
    )

    assert code == 0, report
    assert report["reasons"] == {"create:created": 1}
    assert contact_of(crm, "auth0|gus")["name"] == "Gus"
    assert connection_ends(tenant, 1) == ["client"]  # we hung up; the server did not


def test_a_closed_stream_is_resumed_by_last_event_id_and_nothing_is_read_twice(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    users = ("hal", "ivy", "jo")
    for n, user in enumerate(users):
        tenant.add_event(change("created", user, 5 + n, user.title())["detail"])
    tenant.events_per_connection = 1  # the server closes after each event

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 0, report
    assert report["events_read"] == 3
    assert report["reasons"] == {"create:created": 3}
    assert sorted(c["name"] for c in contacts(crm)) == ["Hal", "Ivy", "Jo"]
    reads = [r for r in tenant.api_requests() if r.path == "/api/v2/events"]
    assert [r.headers.get("Last-Event-Id") for r in reads] == [
        None,
        offset_of(0),
        offset_of(1),  # the third connection: jo, then a heartbeat, past --until
    ]
    assert reads[0].query["from_timestamp"] == "2026-03-01T09:00:00Z"
    assert all("from_timestamp" not in r.query for r in reads[1:])


def test_events_past_until_are_left_for_later(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.add_event(change("created", "kim", 5, "Kim")["detail"])
    tenant.add_event(change("created", "lou", 75, "Lou")["detail"])  # 10:15, past --until
    tenant.refuse_after_connections = 3

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 0, report
    assert report["reasons"] == {"create:created": 1}
    assert [c["name"] for c in contacts(crm)] == ["Kim"]
    assert report["last_event_id"] == offset_of(0)
    assert connection_ends(tenant, 1) == ["client"]


def test_an_error_message_that_times_out_is_resumed_from_the_last_offset(
    tenant: FakeAuth0, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n, user in enumerate(("max", "ned")):
        tenant.add_event(change("created", user, 5 + n, user.title())["detail"])
    tenant.error_once = {"code": "timeout", "message": "The stream timed out."}

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 0, report
    assert sorted(c["name"] for c in contacts(crm)) == ["Max", "Ned"]
    reads = [r for r in tenant.api_requests() if r.path == "/api/v2/events"]
    assert [r.headers.get("Last-Event-Id") for r in reads] == [None, offset_of(0)]


def test_an_expired_cursor_error_message_says_to_start_again_from_a_time(
    tenant: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant.add_event(change("created", "oz", 5, "Oz")["detail"])
    tenant.error_once = {"code": "cursor_expired", "message": "The cursor has expired."}

    code, report = catch_up(
        capsys, "--since", "2026-03-01T09:00:00Z", "--until", "2026-03-01T10:00:00Z"
    )

    assert code == 2
    assert "cursor_expired" in report["err"]
    assert "--since TIME" in report["err"]
    assert "Traceback" not in report["err"]
