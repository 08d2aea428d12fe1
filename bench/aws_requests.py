"""Figure: AWS requests per event, counted at local AWS, and what one event costs in AWS.

The stream goes through the real Lambda handlers in a fresh process whose boto3 talks to
local-aws through a counting proxy (`bench/aws_proxy.py`, its own process): every request
that reaches local AWS is counted by operation and answer, and the counts are read after
each event, so each event's requests are known and grouped by its outcome. The naive flow
runs on the same stream with the proxy counting too (it makes no AWS request). The old flow
(the code before the lean hot path, `OLD_FLOW_COMMIT`, taken from git) runs the same stream
through its own handlers, counted the same way.

A second fresh process per flow runs the stream straight at local-aws, uncounted, for the
wall time per event that the Lambda-time cost is priced from.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from auth0_sync_cli.sample import SampleStream, generate, reconcile
from bench.calls import run_naive
from bench.report import Row, Section, median, ratio
from bench.servers import Peers, functions_at, local_client

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_REQUESTS_PER_EVENT = 1.5
# The code before the lean hot path (Powertools Idempotency, lease and commit for every event).
OLD_FLOW_COMMIT = "40865aac283c7d136ba1d36d68e87a72e4d89fde"
OLD_FLOW_ISSUE_FIGURE = 4.00  # issue 13's count for it, on its 318-event stream
# The old flow's Powertools Idempotency table, which local-aws no longer makes: as that
# commit's local-aws made it (partition key `id`), created here for the old flow alone.
OLD_FLOW_IDEMPOTENCY_TABLE = "auth0-sync-idempotency"
OLD_FLOW_IDEMPOTENCY_ENV = "IDEMPOTENCY_TABLE"

# The login-heavy mix the lead measured in-process (1.47 DynamoDB requests/event): 60 users,
# 70% of updates login-only, no duplicates, no odd events; sample.generate's other defaults
# (20% of events delivered late). The in-order variant is the stream issue 13 describes.
MIXES: dict[str, dict[str, Any]] = {
    "login-heavy": {"duplicate_share": 0.0, "specials": False},
    "login-heavy, in order": {
        "duplicate_share": 0.0,
        "specials": False,
        "out_of_order_share": 0.0,
    },
}
USERS, SEED = 60, 7

# Prices: AWS list prices for us-east-1 as the author knows them (AWS pricing pages, 2025;
# Lambda's unchanged since arm64 launched in 2021-09, DynamoDB on-demand's since its
# 2024-11-01 cut). They are list prices to check before quoting, not a quote.
PRICES_AS_OF = "us-east-1 list prices as of 2025 (to be checked against aws.amazon.com/pricing)"
LAMBDA_ARM64_GB_SECOND_USD = 0.0000133334  # first 7.5 billion GB-s a month
LAMBDA_REQUEST_USD = 0.20 / 1e6
DYNAMODB_WRITE_UNIT_USD = 0.625 / 1e6  # on-demand write request unit
DYNAMODB_READ_UNIT_USD = 0.125 / 1e6  # on-demand read request unit
WRITES = ("PutItem", "UpdateItem", "DeleteItem")
READS = ("GetItem", "Query", "Scan")


# --- in the bench process -------------------------------------------------------------------


@dataclass
class FlowRun:
    """One flow on one stream: per-event records, CRM calls, the contacts left."""

    name: str
    records: list[dict[str, Any]]
    crm_calls: int
    mismatches: int
    seconds_per_event: float = 0.0  # warm, from the uncounted run

    @property
    def events(self) -> int:
        return len(self.records)

    def requests(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for record in self.records:
            total.update(record["requests"])
        return total

    def per_event(self, service: str | None = "DynamoDB") -> float:
        """Requests per event to one service (`None`: to any)."""
        made = sum(
            n
            for key, n in self.requests().items()
            if service is None or key.startswith(service + " ")
        )
        return made / self.events

    def by_operation(self) -> Counter[str]:
        """`Service Operation` (answers summed) -> requests."""
        ops: Counter[str] = Counter()
        for key, n in self.requests().items():
            service, operation, _ = key.split(" ", 2)
            ops[f"{service} {operation}"] += n
        return ops


def _old_flow_table(peers: Peers) -> str:
    """The old flow's idempotency table in local AWS (made straight there, not through the
    counting proxy: making it is not a request of either flow)."""
    aws = peers.aws_environment()
    dynamodb = local_client("dynamodb", aws)
    # Made already for an earlier run of the old flow: in use, as wanted.
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):
        dynamodb.create_table(
            TableName=OLD_FLOW_IDEMPOTENCY_TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return OLD_FLOW_IDEMPOTENCY_TABLE


def _run_worker(
    peers: Peers, events: Path, *, counted: bool, tree: Path | None, tag: str
) -> list[dict[str, Any]]:
    env = peers.counted_handler_environment() if counted else peers.handler_environment()
    if tree is not None:  # the old flow's packages shadow the installed ones
        env["PYTHONPATH"] = os.pathsep.join([str(tree), str(REPO_ROOT)])
        env[OLD_FLOW_IDEMPOTENCY_ENV] = _old_flow_table(peers)
    out = peers.workdir / f"aws-{tag}.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.aws_worker",
            str(events),
            str(out),
            peers.proxy_url + "/_bench/counts" if counted else "",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # the handlers' JSON logs and EMF metrics
        check=True,
    )
    records: list[dict[str, Any]] = json.loads(out.read_text())
    return records


def _handler_flow(
    peers: Peers, stream: SampleStream, events: Path, name: str, tree: Path | None, *, timed: bool
) -> FlowRun:
    peers.reset()
    stream.seed_preexisting(lambda fields: peers.crm.seed([fields])[0])
    peers.reset_aws_counts()
    records = _run_worker(peers, events, counted=True, tree=tree, tag=f"{name}-counted")
    crm_calls = int(peers.crm.stats()["total"])
    mismatches = len(reconcile(stream.truth, peers.crm.contacts()))
    if not timed:
        return FlowRun(name, records, crm_calls, mismatches)
    # The timed run: straight at local-aws, nothing read between events.
    peers.reset()
    stream.seed_preexisting(lambda fields: peers.crm.seed([fields])[0])
    again = _run_worker(peers, events, counted=False, tree=tree, tag=f"{name}-timed")
    warm = [r["seconds"] for r in again[1:]]  # the first event pays the cold start
    return FlowRun(name, records, crm_calls, mismatches, sum(warm) / len(warm))


def _naive_flow(peers: Peers, stream: SampleStream) -> FlowRun:
    peers.reset_aws_counts()
    result = run_naive(peers, stream)
    made = peers.aws_counts()
    records = [{"type": "", "outcome": "naive", "seconds": 0.0, "requests": {}}] * result.events
    if made:
        records[0] = {**records[0], "requests": made}
    return FlowRun(
        "naive", records, result.calls, len(result.mismatches), result.seconds / result.events
    )


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB bills for an item (its sizing rules: names + values, 3 bytes per map or
    list plus 1 per element, about 1 byte per 2 significant digits of a number plus 1)."""

    def value_size(value: dict[str, Any]) -> int:
        (kind, inner), *_ = value.items()
        if kind in ("S", "B"):
            return len(inner.encode()) if isinstance(inner, str) else len(inner)
        if kind == "N":
            digits = str(Decimal(inner).normalize()).lstrip("-").replace(".", "").lstrip("0")
            return math.ceil(len(digits) / 2) + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
        if kind == "L":
            return 3 + sum(value_size(v) + 1 for v in inner)
        if kind in ("SS", "NS", "BS"):
            return sum(len(str(v).encode()) for v in inner)
        return len(json.dumps(inner))

    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def state_item_sizes(peers: Peers) -> list[int]:
    """Sizes of the users' state items left in local-aws (claim items `#...` left out)."""
    client = local_client(
        "dynamodb", {**peers.aws_environment(), "AWS_ENDPOINT_URL": peers.aws_url}
    )
    assert peers.resources is not None
    sizes = []
    for page in client.get_paginator("scan").paginate(TableName=peers.resources.state_table):
        for item in page["Items"]:
            if not str(item.get("user_id", {}).get("S", "")).startswith("#"):
                sizes.append(item_size(dict(item)))
    return sizes


@dataclass(frozen=True)
class Cost:
    lambda_ms: float  # billed: the mean warm wall time, rounded up to 1 ms
    write_units: float
    read_units: float

    def per_million(self, memory_mb: int) -> dict[str, float]:
        compute = self.lambda_ms / 1000 * memory_mb / 1024 * LAMBDA_ARM64_GB_SECOND_USD * 1e6
        return {
            "compute": compute,
            "requests": LAMBDA_REQUEST_USD * 1e6,
            "dynamodb": (
                self.write_units * DYNAMODB_WRITE_UNIT_USD
                + self.read_units * DYNAMODB_READ_UNIT_USD
            )
            * 1e6,
        }


def cost_of(run: FlowRun, units_per_write: float) -> Cost:
    ops = run.by_operation()
    writes = sum(n for key, n in ops.items() if key.split(" ")[-1] in WRITES) / run.events
    # GetItem is read strongly consistent by the state store: 1 unit per 4 KB.
    reads = sum(n for key, n in ops.items() if key.split(" ")[-1] in READS) / run.events
    return Cost(math.ceil(run.seconds_per_event * 1000), writes * units_per_write, reads)


def _ops_text(run: FlowRun) -> str:
    ops = run.by_operation()
    text = ", ".join(f"{op} {n / run.events:.2f}" for op, n in sorted(ops.items()))
    return text or "none"


def _answers_text(run: FlowRun) -> str:
    made = run.requests()
    failed = {key: n for key, n in made.items() if not key.endswith(" ok")}
    text = ", ".join(f"{key} {n}" for key, n in sorted(failed.items())) or "none failed"
    return text.replace("ConditionalCheckFailedException", "(condition failed)")


def _groups(run: FlowRun) -> list[tuple[str, list[dict[str, Any]]]]:
    """The run's events by `outcome (event type)`, largest group first."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in run.records:
        groups[f"{record['outcome']} ({record['type']})"].append(record)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def _made(records: list[dict[str, Any]], service: str | None = None) -> Counter[str]:
    """Requests of these events by `Service Operation` (failed conditions named)."""
    made: Counter[str] = Counter()
    for record in records:
        for key, n in record["requests"].items():
            where, operation, answer = key.split(" ", 2)
            if service is not None and where != service:
                continue
            failed = "ConditionalCheckFailedException"
            label = operation if answer == "ok" else f"{operation} ({answer})"
            made[f"{where} {label.replace(failed, 'condition failed')}"] += n
    return made


def by_outcome(run: FlowRun) -> list[str]:
    """Markdown rows: per outcome and event type, events, AWS requests per event by operation."""
    total = sum(run.by_operation().values())
    rows = []
    for group, records in _groups(run):
        made = _made(records)
        all_made = sum(made.values())
        ops = ", ".join(f"{op} {n / len(records):.2f}" for op, n in sorted(made.items()))
        share = f"{all_made / total:.0%}" if total else "—"
        rows.append(
            f"| {group} | {len(records)} | {all_made / len(records):.2f} | {ops or '—'} | {share} |"
        )
    return rows


def above_floor(run: FlowRun) -> str:
    """Which events pay more than the 1 DynamoDB request an event costs at least, and how much."""
    parts = []
    extra_total = 0
    for group, records in _groups(run):
        made = sum(_made(records, "DynamoDB").values())
        extra = made - len(records)
        if extra > 0:
            extra_total += extra
            parts.append(
                f"{group}: {len(records)} events x {made / len(records):.2f} = "
                f"+{extra / run.events:.3f} per event"
            )
    return (
        f"Above the floor of 1 DynamoDB request per event, {extra_total / run.events:.3f} "
        "per event come from: " + "; ".join(parts) + "."
    )


def _failed_before_change(run: FlowRun) -> str:
    """What the events that changed something spent on a conditional write that failed."""
    changed = [r for r in run.records if r["outcome"].startswith("applied:")]
    failed = sum(
        n
        for r in changed
        for key, n in r["requests"].items()
        if key.startswith("DynamoDB ") and key.endswith("ConditionalCheckFailedException")
    )
    if not failed:
        return "No event that changed the CRM paid for a failed conditional write."
    return (
        f"{failed} of the {len(changed)} events that changed the CRM first paid a conditional "
        "write that failed (the one-request skip for an unchanged event, tried on every "
        "`user.updated`), then took the lease and committed: 3 requests for a real change "
        f"where issue 13 asks at most 2. That is +{failed / run.events:.3f} per event; "
        f"without it this stream would cost {run.per_event() - failed / run.events:.2f} "
        "DynamoDB requests per event."
    )


def run(peers: Peers, *, memory_mb: int) -> list[Section]:
    """The AWS-requests figure and the cost figure."""
    started = time.perf_counter()
    tree = functions_at(OLD_FLOW_COMMIT, peers.workdir, "old-flow")
    results: dict[str, dict[str, FlowRun]] = {}
    sizes: list[int] = []
    for number, (mix, knobs) in enumerate(MIXES.items()):
        # The first mix is the figure's (every flow, counted and timed); the others are
        # counted for ours only, to keep the bench short.
        first = number == 0
        stream = generate(USERS, seed=SEED, **knobs)
        events = peers.workdir / f"events-{number}.json"
        events.write_text(json.dumps(stream.events))
        flows = {"ours": _handler_flow(peers, stream, events, "ours", None, timed=first)}
        if first:
            sizes = state_item_sizes(peers) or [0]
            flows["naive"] = _naive_flow(peers, stream)
            if isinstance(tree, Path):
                flows["old"] = _handler_flow(peers, stream, events, "old", tree, timed=True)
        results[mix] = flows
    if isinstance(tree, Path):
        shutil.rmtree(tree.parent, ignore_errors=True)

    main = results["login-heavy"]
    ours, naive = main["ours"], main["naive"]
    old = main.get("old")
    in_order = results["login-heavy, in order"]["ours"]
    section = Section(
        title="AWS requests per event",
        method=(
            f"`sample.generate({USERS}, seed={SEED}, duplicate_share=0.0, specials=False)` "
            f"(login-heavy: 70% of updates login-only; {ours.events} events) and the same with "
            "`out_of_order_share=0.0` (in order), each event through the real Lambda handlers "
            "one after the other in a fresh process, as Lambda calls them; boto3 reaches "
            "local-aws through a counting proxy in its own process (`bench/aws_proxy.py`), "
            "which counts every request by operation and answer and is read after each event. "
            "Baselines on the same stream: the naive flow (`bench/naive.py`, counted by the "
            f"same proxy) and the old flow (the handlers of commit {OLD_FLOW_COMMIT[:7]}, "
            "before the lean hot path, from git)."
        ),
        runs="1 per flow and stream: the counts are fixed by the stream, a repeat gives the same",
    )
    section.rows += [
        Row(
            "AWS requests per event, login-heavy mix",
            f"{ours.per_event('DynamoDB'):.2f} DynamoDB + {ours.per_event('SecretsManager'):.3f}"
            " Secrets Manager",
            f"naive {naive.per_event(None):.2f}; old "
            + (f"{old.per_event('DynamoDB'):.2f}" if old else f"{OLD_FLOW_ISSUE_FIGURE:.2f}"),
            ratio(ours.per_event("DynamoDB"), old.per_event("DynamoDB"))
            if old
            else ratio(ours.per_event("DynamoDB"), OLD_FLOW_ISSUE_FIGURE),
            f"≤ {TARGET_REQUESTS_PER_EVENT} (floor 1)",
            ours.per_event("DynamoDB") <= TARGET_REQUESTS_PER_EVENT,
        ),
        Row(
            "AWS requests per event, login-heavy mix in order",
            f"{in_order.per_event('DynamoDB'):.2f} DynamoDB",
            f"old {OLD_FLOW_ISSUE_FIGURE:.2f} (issue 13, its 318-event stream)",
            ratio(in_order.per_event("DynamoDB"), OLD_FLOW_ISSUE_FIGURE),
            f"≤ {TARGET_REQUESTS_PER_EVENT} (floor 1)",
            in_order.per_event("DynamoDB") <= TARGET_REQUESTS_PER_EVENT,
        ),
        Row(
            "CRM calls per event, login-heavy mix (reconcile problems)",
            f"{ours.crm_calls / ours.events:.3f} ({ours.mismatches})",
            f"naive {naive.crm_calls / naive.events:.3f} ({naive.mismatches})"
            + (f"; old {old.crm_calls / old.events:.3f} ({old.mismatches})" if old else ""),
            ratio(ours.crm_calls, old.crm_calls if old else naive.crm_calls),
            "≤ the old flow's, 0 problems" if old else "0 problems",
            ours.mismatches == 0 and (old is None or ours.crm_calls <= old.crm_calls),
        ),
    ]
    flows_text = []
    for mix, flows in results.items():
        for name, flow in flows.items():
            flows_text.append(
                f"| {mix} | {name} | {flow.events} | {_ops_text(flow)} "
                f"| {flow.per_event('DynamoDB'):.2f} | {_answers_text(flow)} "
                f"| {flow.crm_calls / flow.events:.3f} | {flow.mismatches} |"
            )
    section.detail += [
        "| stream | flow | events | AWS requests per event, by operation | DynamoDB per "
        "event | failed conditions (of all requests) | CRM calls per event | reconcile "
        "problems |",
        "|---|---|---|---|---|---|---|---|",
        *flows_text,
        "",
        "Ours by outcome and event type (login-heavy mix; share = of all AWS requests):",
        "",
        "| outcome (event type) | events | AWS requests per event | by operation | share |",
        "|---|---|---|---|---|",
        *by_outcome(ours),
        "",
        "Ours by outcome and event type, in order:",
        "",
        "| outcome (event type) | events | AWS requests per event | by operation | share |",
        "|---|---|---|---|---|",
        *by_outcome(in_order),
    ]
    if old:
        section.detail += [
            "",
            "The old flow by outcome and event type (login-heavy mix):",
            "",
            "| outcome (event type) | events | AWS requests per event | by operation | share |",
            "|---|---|---|---|---|",
            *by_outcome(old),
        ]
    else:
        section.notes.append(f"The old flow was not run ({tree}); its figure is issue 13's.")
    section.notes += [
        above_floor(ours),
        _failed_before_change(ours),
        "In order: " + above_floor(in_order)[0].lower() + above_floor(in_order)[1:],
        "A Lambda-level failure (`raised:...`) would be retried by Lambda later; none are "
        "expected on an in-order, one-at-a-time stream.",
        "Secrets Manager: one `GetSecretValue` per process (the CRM token, cached 5 min); "
        "in AWS, once per container and 5 minutes, so it is left out of the cost below.",
    ]
    if ours.per_event("DynamoDB") > TARGET_REQUESTS_PER_EVENT:
        section.notes.append(
            f"Target missed: {ours.per_event('DynamoDB'):.2f} DynamoDB requests per event; "
            "see the outcomes above for which events pay more than one."
        )
    section.seconds = time.perf_counter() - started

    # --- the cost figure ------------------------------------------------------------------
    largest = max(sizes)
    units_per_write = (
        1.0 if largest <= 1024 else sum(math.ceil(s / 1024) for s in sizes) / len(sizes)
    )
    costs = {"ours": cost_of(ours, units_per_write), "naive": cost_of(naive, units_per_write)}
    if old:
        costs["old"] = cost_of(old, units_per_write)
    else:  # issue 13's count: 3 UpdateItem + 1 PutItem, all writes, at our Lambda time
        costs["old"] = Cost(costs["ours"].lambda_ms, OLD_FLOW_ISSUE_FIGURE * units_per_write, 0)
    priced = {name: cost.per_million(memory_mb) for name, cost in costs.items()}
    totals = {name: sum(parts.values()) for name, parts in priced.items()}
    cost_section = Section(
        title="What one event costs in AWS",
        method=(
            f"Lambda: the mean warm wall time per event of the figure above's login-heavy "
            f"stream, run again in a fresh process straight at local-aws (no proxy, nothing "
            f"read between events, the first event left out), rounded up to Lambda's 1 ms, at "
            f"the stack's {memory_mb} MB (`infra/config.py` FUNCTION_MEMORY_MB, arm64), plus "
            f"the per-invocation charge; DynamoDB on-demand: the write and read requests "
            f"counted above, in request units. Prices: {PRICES_AS_OF}: Lambda arm64 "
            f"${LAMBDA_ARM64_GB_SECOND_USD:.10f} per GB-second and "
            f"${LAMBDA_REQUEST_USD * 1e6:.2f} per million requests; DynamoDB on-demand "
            f"${DYNAMODB_WRITE_UNIT_USD * 1e6:.3f} per million write request units, "
            f"${DYNAMODB_READ_UNIT_USD * 1e6:.3f} per million read request units."
        ),
        runs=(
            "1 timed run per flow, within the figure above (the counts are fixed; the time "
            "is this machine's)"
        ),
    )
    cost_section.rows += [
        Row(
            "AWS cost per million events, login-heavy mix (Lambda + DynamoDB)",
            f"${totals['ours']:.2f}",
            f"naive ${totals['naive']:.2f}; old ${totals['old']:.2f}",
            ratio(totals["ours"], totals["old"]),
            "—",
            None,
        ),
    ]
    cost_section.detail += [
        "| flow | Lambda ms billed per event | GB-s per event | DynamoDB write / read units "
        "per event | Lambda compute | Lambda requests | DynamoDB | total per million events |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {cost.lambda_ms:.0f} | {cost.lambda_ms / 1000 * memory_mb / 1024:.5f} "
            f"| {cost.write_units:.2f} / {cost.read_units:.2f} | ${priced[name]['compute']:.2f} "
            f"| ${priced[name]['requests']:.2f} | ${priced[name]['dynamodb']:.2f} "
            f"| ${totals[name]:.2f} |"
            for name, cost in costs.items()
        ),
    ]
    cost_section.notes += [
        f"Write units: DynamoDB bills a write 1 unit per KB of the larger of the item before "
        f"and after, and a failed conditional write too. The users' state items left after "
        f"the run ({len(sizes)}) are {median(sizes):.0f} bytes (median), {largest} bytes at "
        f"most (DynamoDB's sizing rules applied to the items read back; the state keeps "
        f"digests, not the profile's values), so "
        + (
            "every write here is 1 unit."
            if largest <= 1024
            else f"a write is {units_per_write:.2f} units on average."
        ),
        "The Lambda time is measured against moto on this shared 2-core machine, where a "
        "DynamoDB request takes several ms of Python in both processes; in AWS a request "
        "in-region is a few ms of waiting, so these times (and the share of cost they carry) "
        "are an upper bound. The naive flow's time is against a zero-latency local CRM; a "
        "real CRM's latency would add to every flow, most to the one that calls it most.",
        "Not counted: EventBridge (the same for every flow), CloudWatch Logs ingestion of the "
        "handlers' JSON lines, Secrets Manager (once per container), the DLQ (failures only).",
    ]
    if not old:
        cost_section.notes.append(
            "The old flow is priced from issue 13's 4 requests/event at our Lambda time."
        )
    return [section, cost_section]
