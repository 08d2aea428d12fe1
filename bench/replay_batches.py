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
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from auth0_sync.dead_letter import Failure, SqsDeadLetterQueue
from auth0_sync.names import CrmType, Env
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from auth0_sync_cli.sample import EPOCH, bus_event
from bench.report import Row, Section
from bench.servers import Peers

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def _aws(env: dict[str, str]) -> dict[str, Any]:
    """boto3's arguments for local-aws, as the handlers' environment gives them."""
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env.get("AWS_DEFAULT_REGION", "us-east-1"),
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID", "testing"),
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }


def _sqs(env: dict[str, str]) -> Any:
    return boto3.client("sqs", **_aws(env))


def _secrets(env: dict[str, str]) -> Any:
    return boto3.client("secretsmanager", **_aws(env))


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
    fake: FakeHubSpot | FakeSalesforce | None = None
    read: Callable[[], list[dict[str, Any]]]
    count_requests: Callable[[], int]
    if crm_type is CrmType.REST:
        crm = peers.crm
        read, count_requests = crm.contacts, lambda: int(crm.stats()["total"])
    elif crm_type is CrmType.HUBSPOT:
        # A window wide enough not to pace: requests are counted here, not timed.
        hubspot = FakeHubSpot(window_calls=1_000_000, window_ms=1000).start()
        fake, secret = hubspot, json.dumps({"token": hubspot.token})
        read = lambda: [hubspot_contact(r) for r in hubspot.contacts()]  # noqa: E731
        count_requests = lambda: len(hubspot.requests)  # noqa: E731
    else:
        org = FakeSalesforce(daily_limit=10_000_000).start()
        fake, secret = org, json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        read = lambda: [salesforce_contact(r) for r in org.contacts()]  # noqa: E731
        count_requests = lambda: int(org.api_used)  # noqa: E731
    try:
        if fake is not None:
            _secrets(env).put_secret_value(
                SecretId=env[Env.CRM_TOKEN_SECRET_ARN], SecretString=secret
            )
            env[Env.CRM_TYPE] = str(crm_type)
            env[Env.CRM_BASE_URL] = fake.base_url
        dlq = SqsDeadLetterQueue(queue_url, client=_sqs(env))
        for raw in events_of(count):
            failure = Failure("TransientError", "crm_503", "HTTP 503", "replay-bench", 3, _stamp(1))
            dlq.send_permanent(raw, failure)
        before = count_requests()
        argv = ["replay", "--queue-url", queue_url, "--rate", "100000", "--json"]
        started = time.perf_counter()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "auth0_sync_cli.main", *argv),
                *([] if batch else ["--no-batch"]),
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr[-2000:]}")
        report = json.loads(done.stdout)
        requests = count_requests() - before
        return {
            "destination": str(crm_type),
            "batch": batch,
            "events": count,
            "requests": requests,
            "per_event": requests / count,
            "seconds": seconds,
            "applied": report["applied"],
            "failed": report["failed"],
            "mismatches": _mismatches(count, read()),
            "left_in_dlq": _left(env, queue_url),
        }
    finally:
        if fake is not None:
            fake.stop()


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
