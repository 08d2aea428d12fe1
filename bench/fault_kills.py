"""Figure: faults around `auth0-sync process` run as a child process (issue 22's campaign).

The sync runs as it does on an operator's machine: `auth0-sync process FILE --state aws` in
a child process, against local AWS (moto's server, the stack's table, DLQ and secret, from
`auth0_sync_cli.local_aws.create_resources`) and the reference CRM
(`auth0_sync_cli.crm_server.CrmServer`), both served by this process. Campaigns:

- **kills**: the run is killed with SIGKILL, alternately at a random moment and while a
  CRM write is unanswered (the CRM holds each write `HOLD_SECONDS` before applying it, so
  the write lands after its client died); then the stream is run again to its end, then
  the DLQ replayed (`auth0-sync replay`);
- **a token rotation**: the token comes from the secret (`CRM_TOKEN_SECRET_ARN`, not
  `CRM_API_TOKEN`); after a third of the stream's CRM calls the CRM takes a new token
  (`server.token`, read per request) and the secret is updated to it; the run goes on;
- **DynamoDB throttling**: a share of the DynamoDB requests is answered
  `ProvisionedThroughputExceededException` before it reaches moto (a WSGI layer in front).

Each ends with the DLQ replayed once and the CRM reconciled with the stream's Auth0 truth
(`auth0_sync_cli.truth`): contacts lost, duplicated, wrong, and the events left in the DLQ
for a person.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from flask import request
from werkzeug.serving import make_server

from auth0_sync.names import LOCAL_REGION, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import MOTO_CREDENTIALS, LocalResources, create_resources, moto_app
from auth0_sync_cli.sample import SampleStream, generate
from auth0_sync_cli.truth import kinds, reconcile

HOLD_SECONDS = 0.6  # a write held by the CRM while the kill comes
THROTTLE_SHARE = 0.3  # of DynamoDB requests
ROTATED_TOKEN = "bench-rotated-token"  # noqa: S105 (a local test credential)
RUN_TIMEOUT = 300.0


@dataclass
class KillCampaign:
    name: str
    events: int
    faults: int  # kills, rotations or throttled requests
    dead_before_replay: int  # DLQ messages after the last run, before the replay
    lost: int
    duplicates: int
    wrong: int
    left: int  # events left in the DLQ for a person after the replay
    problems: Counter[str]
    seconds: float
    exits: list[int]  # exit codes of the runs that were not killed, then the replay's


class Throttling:
    """WSGI layer in front of moto: answers a share of DynamoDB requests with the
    throttling error DynamoDB returns (HTTP 400, `ProvisionedThroughputExceededException`,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html),
    which botocore retries."""

    def __init__(self, app: Any, share: float, rng: random.Random) -> None:
        self.app, self.share, self.rng = app, share, rng
        self.throttled = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self.share and target.startswith("DynamoDB_20120810."):
            with self._lock:
                throttle = self.rng.random() < self.share
                self.throttled += throttle
            if throttle:
                body = json.dumps(
                    {
                        "__type": "com.amazonaws.dynamodb.v20120810#"
                        "ProvisionedThroughputExceededException",
                        "message": "bench fault: throughput exceeded",
                    }
                ).encode()
                start_response(
                    "400 Bad Request",
                    [
                        ("Content-Type", "application/x-amz-json-1.0"),
                        ("Content-Length", str(len(body))),
                    ],
                )
                return [body]
        return self.app(environ, start_response)


class HeldWrites:
    """A hook on the CRM: when armed, the next contact write signals `arrived` and is held
    `HOLD_SECONDS` before the CRM applies it."""

    def __init__(self, crm: CrmServer) -> None:
        self.armed = threading.Event()
        self.arrived = threading.Event()
        crm.app.before_request(self._hook)

    def _hook(self) -> None:
        path = request.path
        contacts = path.startswith("/contacts") and not path.endswith("/find")  # a read
        writing = request.method in ("POST", "PATCH") and contacts
        if writing and self.armed.is_set():
            self.armed.clear()
            self.arrived.set()
            time.sleep(HOLD_SECONDS)


@contextmanager
def local_aws(throttling: Throttling) -> Iterator[LocalResources]:
    server = make_server("127.0.0.1", 0, throttling, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="bench-aws", daemon=True)
    thread.start()
    try:
        share, throttling.share = throttling.share, 0.0  # the resources made unthrottled
        endpoint = f"http://127.0.0.1:{server.port}"
        # moto's backends live in this process: forget the previous campaign's state.
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        resources = create_resources(endpoint)
        throttling.share = share
        yield resources
    finally:
        server.shutdown()
        server.server_close()


class Harness:
    """One campaign's local AWS, CRM, stream file and child processes."""

    def __init__(
        self,
        aws: LocalResources,
        crm: CrmServer,
        held: HeldWrites,
        stream: SampleStream,
        workdir: Path,
    ) -> None:
        self.aws, self.crm, self.held, self.stream = aws, crm, held, stream
        self.events_file = workdir / "events.jsonl"
        self.events_file.write_text("".join(json.dumps(e) + "\n" for e in stream.events))
        self.env = {
            **os.environ,
            **aws.environment(),
            Env.CRM_BASE_URL: crm.base_url,
            Env.CRM_API_TOKEN: crm.token,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "XDG_STATE_HOME": str(workdir / "state"),
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        self.workdir = workdir

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "auth0_sync_cli.main", *args],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def process(self) -> subprocess.Popen[bytes]:
        return self.start("process", str(self.events_file), "--state", "aws")

    def client(self, service: str) -> Any:
        session = boto3.session.Session(
            aws_access_key_id=MOTO_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=MOTO_CREDENTIALS["aws_secret_access_key"],
            region_name=LOCAL_REGION,
        )
        return session.client(service, endpoint_url=self.aws.endpoint_url)  # type: ignore[call-overload]

    def dlq_depth(self) -> int:
        sqs = self.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        got = sqs.get_queue_attributes(QueueUrl=self.aws.dlq_url, AttributeNames=names)
        return sum(int(got["Attributes"].get(n, 0)) for n in names)

    def finish(self, name: str, faults: int, exits: list[int], started: float) -> KillCampaign:
        dead = self.dlq_depth()
        replay = self.start("replay", "--timeout", "10")
        exits.append(replay.wait(RUN_TIMEOUT))
        found = kinds(reconcile(self.stream.truth, self.crm.contacts()))
        return KillCampaign(
            name=name,
            events=len(self.stream.events),
            faults=faults,
            dead_before_replay=dead,
            lost=found["missing"],
            duplicates=found["duplicate"],
            wrong=sum(found.values()) - found["missing"] - found["duplicate"],
            left=self.dlq_depth(),
            problems=found,
            seconds=time.perf_counter() - started,
            exits=exits,
        )


@contextmanager
def harness(users: int, seed: int, throttle: float = 0.0) -> Iterator[tuple[Harness, Throttling]]:
    throttling = Throttling(moto_app(), throttle, random.Random(seed))
    crm = CrmServer()
    held = HeldWrites(crm)
    with tempfile.TemporaryDirectory() as tmp, local_aws(throttling) as aws, crm:
        stream = generate(users, seed=seed, specials=False)
        stream.seed_preexisting(lambda fields: crm.seed_contact(**fields))
        yield Harness(aws, crm, held, stream, Path(tmp)), throttling


def kills(*, users: int, seed: int, count: int) -> KillCampaign:
    """`count` runs killed (even: at a random moment, odd: with a CRM write unanswered),
    then one run to the end and the replay. A run that ends before its kill is not one."""
    rng = random.Random(seed)
    with harness(users, seed) as (bench, _):
        held = bench.held
        started = time.perf_counter()
        killed: Counter[str] = Counter()
        exits = []
        for number in range(count):
            child = bench.process()
            if number % 2:
                held.arrived.clear()
                held.armed.set()
                while not held.arrived.wait(0.05) and child.poll() is None:
                    pass
                time.sleep(HOLD_SECONDS / 3)
            else:
                # A random point of the run's progress (its CRM calls; timing would depend on
                # the machine's load), then anywhere before the next call.
                target = bench.crm.stats()["total"] + rng.randint(1, users)
                while bench.crm.stats()["total"] < target and child.poll() is None:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.05))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                killed["mid-write" if number % 2 else "at random"] += 1
            held.armed.clear()
            exits.append(child.wait())
        exits = [code for code in exits if code != -signal.SIGKILL]
        exits.append(bench.process().wait(RUN_TIMEOUT))
        name = (
            f"kill -9: {killed['at random']} at random moments, {killed['mid-write']} with a "
            "CRM write unanswered; then a rerun"
        )
        return bench.finish(name, killed.total(), exits, started)


def rotation(*, users: int, seed: int) -> KillCampaign:
    """The CRM token rotated (and the secret updated) about a third into the run."""
    with harness(users, seed) as (bench, _):
        del bench.env[Env.CRM_API_TOKEN]  # the token from the secret, as in AWS
        calls = users * 2 // 3  # the stream takes ~2 CRM calls per user
        started = time.perf_counter()
        child = bench.process()
        while bench.crm.stats()["total"] < calls and child.poll() is None:
            time.sleep(0.01)
        bench.crm.token = ROTATED_TOKEN
        secrets = bench.client("secretsmanager")
        secrets.put_secret_value(SecretId=bench.aws.secret_arn, SecretString=ROTATED_TOKEN)
        exits = [child.wait(RUN_TIMEOUT)]
        refused = bench.crm.stats()["by_status"].get("401", 0)
        return bench.finish(
            f"token rotated after {calls} CRM calls ({refused} answered 401)",
            1,
            exits,
            started,
        )


def throttling(*, users: int, seed: int) -> KillCampaign:
    with harness(users, seed, throttle=THROTTLE_SHARE) as (bench, layer):
        started = time.perf_counter()
        exits = [bench.process().wait(RUN_TIMEOUT)]
        layer.share = 0.0  # the replay runs unthrottled
        return bench.finish(
            f"{THROTTLE_SHARE:.0%} of DynamoDB requests throttled",
            layer.throttled,
            exits,
            started,
        )


def campaigns(*, users: int, seed: int, kill_count: int = 6) -> list[KillCampaign]:
    return [
        kills(users=users, seed=seed, count=kill_count),
        rotation(users=users, seed=seed),
        throttling(users=max(1, users // 2), seed=seed),  # botocore's backoff is slow
    ]


if __name__ == "__main__":
    for c in campaigns(users=int(sys.argv[1]) if len(sys.argv) > 1 else 20, seed=22):
        print(c)
