"""`replay` and `redrive` in this process, batched (the default): independent users' events
run at once and their CRM calls ride the reference CRM's contract 1.2 batch calls, while
each user's events still apply in order, a message goes only once its event is applied or
skipped, and a record's own failure inside a batch (409) is that event's alone, back in the
DLQ with its reason and history. Every effect is read back from the CRM (its contacts and
its own request counts) and from moto's queue."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from auth0_sync.dead_letter import SqsDeadLetterQueue
from auth0_sync.names import (
    DLQ_ATTR_ATTEMPTS,
    DLQ_ATTR_ERROR_CLASS,
    DLQ_ATTR_FIRST_FAILURE,
    DLQ_ATTR_REASON,
    Env,
)
from auth0_sync.replay.concurrent import LaneReplayer
from auth0_sync.replay.pacing import Budget, TokenBucket
from auth0_sync.replay.queue import DlqReader
from auth0_sync.replay.replayer import Selection
from auth0_sync.settings import Settings
from auth0_sync.sync import Outcome
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.replay.local import local_replay
from tests.integration.test_redrive import put_failure, recent
from tests.integration.test_replay import (
    FIRST_FAILURE,
    contacts_by_user,
    listed,
    messages,
    put_handler_failure,
    put_on_failure,
    replayer,
    user_event,
)

pytestmark = pytest.mark.integration

USERS = range(1, 9)  # users 1..8: one signup each, user 2 also an update after it
TAKEN = 9  # user 9 signs up with an address a contact of another user holds (409)
OTHER = "auth0|someone-else"


@pytest.fixture
def unique(
    sync_env: LocalResources, unique_crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> CrmServer:
    """The sync's environment against a reference CRM that refuses a second contact with
    one email (409), as the contract lets a CRM do."""
    monkeypatch.setenv(Env.CRM_BASE_URL, unique_crm.base_url)
    return unique_crm


def fill_dlq(aws: LocalResources, crm: CrmServer) -> dict[str, Any]:
    """Ten dead-lettered events of nine users; the taken address's contact is seeded."""
    for n in USERS:
        put_on_failure(aws.dlq_url, user_event(n))
    put_on_failure(aws.dlq_url, user_event(2, "user.updated", 5))
    taken = user_event(TAKEN)
    crm.store.seed({"email": f"user{TAKEN}@example.com", "auth0_user_id": OTHER})
    put_handler_failure(aws.dlq_url, taken)
    crm.reset_stats()
    return taken


def six_signups_in_lanes(aws: LocalResources) -> tuple[LaneReplayer, Callable[[Any], Outcome]]:
    """A batched replay (lanes) over six dead-lettered signups, users 0..5, and the way it
    runs an event (for a test to wrap)."""
    for n in range(6):
        put_on_failure(aws.dlq_url, user_event(n))
    lanes = replayer(aws, batch=True)
    assert isinstance(lanes, LaneReplayer)
    assert lanes.invoke is not None
    return lanes, lanes.invoke


def test_a_batched_replay_applies_each_users_events_in_order_in_fewer_requests(
    unique: CrmServer, sync_env: LocalResources
) -> None:
    taken = fill_dlq(sync_env, unique)
    events = len(USERS) + 2

    # What `auth0-sync replay` builds by default (test_replay.py's kill test runs the command).
    replay = replayer(sync_env, batch=True, rate=1000.0)
    assert isinstance(replay, LaneReplayer)
    report = replay.run(Selection()).to_dict()

    assert report["events"] == events
    assert report["applied"] == {"created": len(USERS), "updated": 1}
    assert report["failed"] == {"owned_by_other": 1}
    # User 2's events in the order the DLQ holds them: the signup, then the update on it.
    mine = [
        (r["event_id"], r["reason"]) for r in report["results"] if r["user_id"] == "auth0|user0002"
    ]
    assert mine == [("evt_created0002m000", "created"), ("evt_updated0002m005", "updated")]
    # The CRM counted fewer requests than events: the signups went in batch creates (POST
    # /contacts/batch), the taken address's find in a batch find (also a POST).
    stats = unique.stats()
    assert stats["total"] < events, stats
    assert stats["by_method"]["POST"] < len(USERS) + 1, stats
    assert report["crm_calls"] == stats["total"]
    # Each user's contact is its truth: one each, the last event's profile.
    contacts = contacts_by_user(unique)
    assert sorted(contacts) == sorted([OTHER, *(f"auth0|user{n:04d}" for n in USERS)])
    for n in USERS:
        [contact] = contacts[f"auth0|user{n:04d}"]
        version = 5 if n == 2 else 0
        assert (contact["email"], contact["name"]) == (
            f"user{n}@example.com",
            f"User {n} v{version}",
        )
    [kept] = contacts[OTHER]
    assert kept["email"] == f"user{TAKEN}@example.com"
    # Only the taken address's event is back, with its new reason and its history.
    [message] = messages(sync_env)
    assert message["body"] == taken
    attributes = message["attributes"]
    assert attributes[DLQ_ATTR_REASON].startswith("owned_by_other: ")
    assert attributes[DLQ_ATTR_ERROR_CLASS] == "OwnedByOther"
    assert attributes[DLQ_ATTR_ATTEMPTS] == "2"
    assert attributes[DLQ_ATTR_FIRST_FAILURE] == FIRST_FAILURE


def test_no_batch_replays_one_call_a_record(unique: CrmServer, sync_env: LocalResources) -> None:
    fill_dlq(sync_env, unique)

    report = replayer(sync_env, batch=False).run(Selection())

    assert report.counts("applied") == {"created": len(USERS), "updated": 1}
    assert report.counts("failed") == {"owned_by_other": 1}
    # One POST per signup (the taken one's too), then the searches and the update.
    assert unique.stats()["by_method"]["POST"] == len(USERS) + 1
    assert len(messages(sync_env)) == 1


def test_an_interrupted_batched_replay_deletes_only_what_it_finished(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    first, real_invoke = six_signups_in_lanes(sync_env)
    stopped = "evt_created0003m000"

    def invoke(raw: Any) -> Outcome:
        outcome = real_invoke(raw)
        if raw["detail"]["id"] == stopped:
            # Ctrl-C once the CRM applied this event, before its message is deleted.
            raise KeyboardInterrupt
        return outcome

    first.invoke = invoke
    report = first.run(Selection())

    assert report.interrupted
    done = {r.event_id for r in report.results}
    assert stopped not in done
    assert sum(r.deleted for r in report.results) == len(done)
    # The interrupted event's message and the others not finished are visible again.
    left = {event_id for event_id, _ in listed(sync_env)}
    assert left == {f"evt_created{n:04d}m000" for n in range(6)} - done
    assert stopped in left

    second = replayer(sync_env, batch=True).run(Selection())
    outcomes = {r.event_id: r.reason for r in second.results}
    assert outcomes[stopped] == "duplicate"  # applied once, before the interrupt
    assert messages(sync_env) == []
    assert all(len(found) == 1 for found in contacts_by_user(crm).values())
    assert len(crm.contacts()) == 6


def test_a_batched_redrive_drains_the_transient_failures_in_fewer_requests(
    sync_env: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(8):
        put_failure(
            sync_env.dlq_url, user_event(n, "user.updated"), "crm_503", first_failure_at=recent()
        )
    put_handler_failure(sync_env.dlq_url, user_event(9))  # crm_401: for a person
    crm.reset_stats()

    code = main(["redrive", "--json", "--rate", "1000", "--timeout", "5"])

    report = json.loads(capsys.readouterr().out)
    assert code == 1, report  # the permanent one still needs a person
    assert (report["redriven"], report["still_failing"], report["left_for_a_person"]) == (8, 0, 1)
    assert report["applied"] == {"created": 8}
    # Single calls: the probe, then a find by owner, a find by email and a create per
    # user (25). Batched: the probe and a batch of each kind.
    stats = crm.stats()
    assert stats["total"] < 8, stats
    contacts = contacts_by_user(crm)
    assert sorted(contacts) == [f"auth0|user{n:04d}" for n in range(8)]
    assert [(c[0]["email"], c[0]["name"]) for _, c in sorted(contacts.items())] == [
        (f"user{n}@example.com", f"User {n} v0") for n in range(8)
    ]
    assert [m["body"]["detail"]["id"] for m in messages(sync_env)] == ["evt_created0009m000"]


def test_a_batched_replay_stops_after_failures_in_a_row_and_leaves_the_rest(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    for n in range(6):
        put_on_failure(sync_env.dlq_url, user_event(n))
    before = {m["body"]["requestPayload"]["detail"]["id"]: m for m in messages(sync_env)}
    lanes = replayer(sync_env, batch=True)
    assert isinstance(lanes, LaneReplayer)
    lanes.workers = 2  # two users at once: each lane's next event waits its turn
    lanes.max_consecutive_failures = 2
    crm.set_outage(401)  # the token refused: the replay rewrites each failure, no retries

    report = lanes.run(Selection())

    assert report.stopped == "2 events in a row failed again"
    # The two first failed; a lane's next event may have started before the second ended
    # (it ends as it would); none after the stop.
    assert 2 <= len(report.results) <= 3
    assert {r.status for r in report.results} == {"failed"}
    failed = {r.event_id for r in report.results}
    # Those that failed again are rewritten (one more attempt); the ones not started are
    # as they were, visible for the next run.
    after = messages(sync_env)
    assert len(after) == 6
    untouched = [m for m in after if "requestPayload" in m["body"]]
    assert {m["body"]["requestPayload"]["detail"]["id"] for m in untouched} == set(before) - failed
    rewritten = [m for m in after if "requestPayload" not in m["body"]]
    assert {m["body"]["detail"]["id"] for m in rewritten} == failed
    reasons = {m["attributes"][DLQ_ATTR_REASON].split(":")[0] for m in rewritten}
    assert reasons == {"crm_credentials_rejected"}
    assert crm.contacts() == []


def test_a_batched_replay_starts_no_event_past_its_time_budget(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    lanes, real_invoke = six_signups_in_lanes(sync_env)
    seconds_left = [2.0]  # each event takes one

    def invoke(raw: Any) -> Outcome:
        seconds_left[0] -= 1
        return real_invoke(raw)

    lanes.invoke = invoke
    lanes.workers = 2
    lanes.budget = Budget(lambda: seconds_left[0])

    report = lanes.run(Selection())

    assert report.stopped == "out of time for this run"
    # Two started with time left; a lane's next may have looked before the other's began.
    assert 2 <= len(report.results) <= 3
    assert {r.reason for r in report.results} == {"created"}
    done = {r.event_id for r in report.results}
    assert {event_id for event_id, _ in listed(sync_env)} == {
        f"evt_created{n:04d}m000" for n in range(6)
    } - done
    assert len(crm.contacts()) == len(done)


def test_a_batched_replays_rate_counts_each_crm_request_a_batch_as_one(
    sync_env: LocalResources, crm: CrmServer
) -> None:
    for n in range(8):
        put_on_failure(sync_env.dlq_url, user_event(n, "user.updated"))
    bucket = TokenBucket(None)  # no limit: counts what it is asked for
    local = local_replay(
        Settings.from_env(os.environ),
        SqsDeadLetterQueue(sync_env.dlq_url),
        bucket=bucket,
        timeout=5.0,
    )
    crm.reset_stats()

    report = local.replayer(DlqReader(sync_env.dlq_url, wait_seconds=0), visibility_seconds=30).run(
        Selection()
    )

    assert report.counts("applied") == {"created": 8}
    # One token per request the CRM received (a batch of finds or creates is one), not
    # one per event: eight users' three calls each went in a few batch requests.
    requests = crm.stats()["total"]
    assert requests < 8
    assert bucket.taken == requests
