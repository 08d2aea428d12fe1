"""CRM requests per replayed event, batch calls (the default) against `--no-batch`, for each
destination: the reference CRM (contract 1.2), the HubSpot fake, the Salesforce fake.

N dead-lettered events are put in local-aws's DLQ in the handlers' shape (a transient
`crm_503`, as an outage leaves them): a signup (`user.created`) for each of 4N/5 users, and
for the first N/5 of them a later `user.updated` (a second event of the same user, which
must apply after its signup). `auth0-sync replay` then runs as a user runs it (a fresh
process, local-aws state, no rate limit) and the CRM counts the requests itself (the
reference CRM's stats, the HubSpot fake's request log, the Salesforce fake's API usage, the
token request excluded). Afterwards every user must hold exactly one contact with its
email and its last event's family name, and no message may be left in the DLQ (read from
the CRM's own store and the queue, not through our code).

    python -m bench.replay_batches 500 [rest hubspot salesforce]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

from auth0_sync.dead_letter import Failure, SqsDeadLetterQueue
from auth0_sync.names import CrmType
from auth0_sync_cli.sample import EPOCH, bus_event
from bench.report import Row, Section
from bench.servers import Peers, destination, local_client, point_at, run_command

UPDATED_SHARE = 5  # one event in five is a second event (an update) of a user


def _stamp(minutes: int) -> str:
    return (EPOCH + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def event(n: int, event_type: str, minutes: int) -> dict[str, Any]:
    """User n's event at EPOCH + minutes; its name says which version it is."""
    obj = {
        "user_id": f"auth0|replay{n:05d}",
        "email": f"replay{n}@example.com",
        "name": f"User {n} v{minutes}",
        "given_name": "User",
        "family_name": f"Replay{n}v{minutes}",
        "created_at": _stamp(0),
        "updated_at": _stamp(minutes),
        "identities": [],
    }
    kind = event_type.split(".")[1]
    return bus_event(event_type, obj, EPOCH + timedelta(minutes=minutes), f"evt_{kind}{n:05d}")


def events_of(count: int) -> list[dict[str, Any]]:
    users = count - count // UPDATED_SHARE
    signups = [event(n, "user.created", 0) for n in range(users)]
    updates = [event(n, "user.updated", 5) for n in range(count - users)]
    return signups + updates


def _sqs(env: dict[str, str]) -> Any:
    return local_client("sqs", env)


def _left(env: dict[str, str], queue_url: str) -> int:
    attributes = _sqs(env).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def one_run(
    peers: Peers, count: int, batch: bool, crm_type: CrmType = CrmType.REST
) -> dict[str, Any]:
    peers.reset()
    env = peers.handler_environment()
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    assert peers.resources is not None
    queue_url = peers.resources.dlq_url
    target = destination(peers, crm_type)
    try:
        point_at(env, crm_type, target)
        dlq = SqsDeadLetterQueue(queue_url, client=_sqs(env))
        for raw in events_of(count):
            failure = Failure("TransientError", "crm_503", "HTTP 503", "replay-bench", 3, _stamp(1))
            dlq.send_permanent(raw, failure)
        before = target.requests()
        argv = ["replay", "--queue-url", queue_url, "--rate", "100000"]
        seconds, report = run_command([*argv, *([] if batch else ["--no-batch"])], env)
        requests = target.requests() - before
        return {
            "destination": str(crm_type),
            "batch": batch,
            "events": count,
            "requests": requests,
            "per_event": requests / count,
            "seconds": seconds,
            "applied": report["applied"],
            "failed": report["failed"],
            "mismatches": _mismatches(count, target.read()),
            "left_in_dlq": _left(env, queue_url),
        }
    finally:
        target.stop()


def _mismatches(count: int, held: list[dict[str, Any]]) -> int:
    """Users without exactly one contact holding their email and last event's family name."""
    owners = Counter(str(c.get("auth0_user_id")) for c in held)
    by_owner = {str(c.get("auth0_user_id")): c for c in held}
    users = count - count // UPDATED_SHARE
    wrong = 0
    for n in range(users):
        owner = f"auth0|replay{n:05d}"
        contact = by_owner.get(owner) or {}
        family = f"Replay{n}v{5 if n < count // UPDATED_SHARE else 0}"
        truth = (f"replay{n}@example.com", family)
        if owners[owner] != 1 or (contact.get("email"), contact.get("family_name")) != truth:
            wrong += 1
    return wrong


def run(peers: Peers, *, count: int = 500) -> Section:
    section = Section(
        title="Replay: CRM requests per replayed event, single calls vs batch calls",
        method=(
            f"`auth0-sync replay --rate 100000` and `... --no-batch` on {count:,} dead-lettered "
            f"events (a signup for each of {count - count // UPDATED_SHARE:,} users, an update "
            f"after it for {count // UPDATED_SHARE:,} of them), local-aws DLQ and state, each "
            "destination; requests counted by the CRM itself."
        ),
        runs="1 per destination and mode",
    )
    section.detail += [
        "| destination | mode | events | requests | per event | time | applied | mismatches | "
        "left in DLQ |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for crm_type in (CrmType.REST, CrmType.HUBSPOT, CrmType.SALESFORCE):
        single, batched = (one_run(peers, count, b, crm_type) for b in (False, True))
        for r in (single, batched):
            applied = ", ".join(f"{k} {n:,}" for k, n in sorted(r["applied"].items()))
            section.detail.append(
                f"| {r['destination']} | {'batch' if r['batch'] else 'single'} | "
                f"{r['events']:,} | {r['requests']:,} | {r['per_event']:.3f} | "
                f"{r['seconds']:.1f} s | {applied} | {r['mismatches']} | {r['left_in_dlq']} |"
            )
        clean = batched["mismatches"] == 0 and batched["left_in_dlq"] == 0
        section.rows.append(
            Row(
                f"Replay {count:,} dead-lettered events, CRM requests per event ({crm_type})",
                f"{batched['per_event']:.3f}",
                f"{single['per_event']:.3f}",
                batched["per_event"] / single["per_event"] if single["per_event"] else None,
                "fewer than single calls, 0 mismatches, DLQ empty",
                batched["per_event"] < single["per_event"] and clean,
            )
        )
    return section


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    modes = sys.argv[2:] or ["rest", "hubspot", "salesforce"]
    with Peers() as peers:
        for name in modes:
            for batch in (True, False):
                print(json.dumps(one_run(peers, count, batch, CrmType(name))), flush=True)
