"""Figure: faults between the sync and the CRM (issue 22), made repeatable.

A seeded sample stream (redeliveries, out-of-order arrivals, deletes, pre-existing
contacts) runs through the sync core against the reference CRM, through a network that
misbehaves on the CRM's writes:

- **dropped answers**: the write is applied, its answer never comes (a timeout);
- **late-applied writes**: the CRM holds a PATCH past our timeout and applies it later,
  after our retry succeeded and newer changes were written (issue 22.1).

Failed events are retried the way Lambda would (rounds, a pause between them), the held
writes all land, and the CRM is then reconciled with the stream's Auth0 truth
(`auth0_sync_cli.truth`, which shares no code with the sync): contacts lost, duplicated,
or wrong (any other difference), and events left for a person (dead letters).

Baseline: the same campaign with writes sent without a precondition (as before contract
1.2's `If-Match`): the late writes silently revert newer changes.

The same campaign runs against the fake HubSpot (no preconditions; its search index lags
1 s behind writes), with `auth0_user_id` unique and without: lost create answers must
neither duplicate a contact nor dead-letter one (issue 22.5), and late writes must not
revert newer ones (the user's next write waits `late_write_seconds`, 2 s here).
A third REST campaign runs the stream three times at once (each run in its own order,
sharing the state and the CRM) against a CRM limited to 200 requests a second (429 with
Retry-After).

Then `bench.fault_kills` runs `auth0-sync process` as a child process against local AWS
and the reference CRM: killed with SIGKILL at random moments and while a CRM write is
unanswered, then rerun; the CRM token rotated mid-run (the secret updated to it); 30% of
the DynamoDB requests throttled. Each ends with the DLQ replayed and the same reconcile.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from auth0_sync.destinations import Contact, RemainingMillis
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.errors import PermanentError, TransientError
from auth0_sync.events import parse_event
from auth0_sync.settings import Settings
from auth0_sync.state import MemorySyncStateStore
from auth0_sync.sync import SyncCore
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.sample import generate
from auth0_sync_cli.truth import kinds, reconcile
from bench import fault_kills
from bench.report import Row, Section
from bench.servers import Peers

DROP_SHARE = 0.15  # of the CRM's writes: applied, answer lost
LATE_SHARE = 0.10  # of the PATCHes: held, applied 0.2-1.5 s later
ROUNDS = 6  # Lambda's first try and retries, then the redrive
ROUND_PAUSE = 0.5


@dataclass
class Faulty(requests.Session):
    """A client-side network that drops answers and holds writes (the CRM is real)."""

    rng: random.Random = field(default_factory=random.Random)
    dropped: int = 0
    held: int = 0
    landed: Counter[int] = field(default_factory=Counter)  # status of each late attempt
    enabled: bool = True  # off: the network has healed
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = (request.path_url or "").split("?")[0]
        contacts = path.startswith(("/contacts", "/crm/v3/objects/contacts"))
        writing = request.method in ("POST", "PATCH") and not path.endswith("/search")
        if self.enabled and writing and contacts:
            roll = self.rng.random()
            if request.method == "PATCH" and roll < LATE_SHARE:
                self.held += 1
                delay = self.rng.uniform(0.2, 1.5)
                late = threading.Thread(target=self._land, args=(request.copy(), delay))
                late.start()
                self._threads.append(late)
                raise requests.ReadTimeout("bench fault: the CRM holds this write")
            if roll < LATE_SHARE + DROP_SHARE:
                super().send(request, **kwargs)  # applied...
                self.dropped += 1
                raise requests.ReadTimeout("bench fault: the answer was lost")
        return super().send(request, **kwargs)

    def _land(self, request: requests.PreparedRequest, delay: float) -> None:
        time.sleep(delay)
        with requests.Session() as plain:
            self.landed[plain.send(request, timeout=10).status_code] += 1

    def wait_for_landings(self) -> None:
        for late in self._threads:
            late.join()


class Unconditional:
    """The baseline's CRM: the same client, its writes without a precondition."""

    def __init__(self, inner: RestCrmClient) -> None:
        self.inner = inner

    def find_contacts(
        self, *, email: str | None = None, auth0_user_id: str | None = None
    ) -> list[Contact]:
        return self.inner.find_contacts(email=email, auth0_user_id=auth0_user_id)

    def get_contact(self, contact_id: str) -> Contact | None:
        return self.inner.get_contact(contact_id)

    def create_contact(self, fields: Mapping[str, Any], idempotency_key: str) -> Contact:
        return self.inner.create_contact(fields, idempotency_key)

    def update_contact(self, contact_id: str, fields: Mapping[str, Any]) -> Contact | None:
        return self.inner.update_contact(contact_id, fields)

    def calls_made(self) -> int:
        return self.inner.calls_made()

    def set_deadline(self, remaining_ms: RemainingMillis | None) -> None:
        self.inner.set_deadline(remaining_ms)


@dataclass
class Campaign:
    events: int
    dropped: int
    held: int
    late_refused: int  # late attempts the CRM refused (412)
    late_applied: int
    lost: int
    duplicates: int
    wrong: int
    left: int  # events in the DLQ for a person
    problems: Counter[str]
    seconds: float


def campaign(
    crm: CrmServer,
    *,
    users: int,
    seed: int,
    guarded: bool,
    runs: int = 1,
    rate_limit: float | None = None,
) -> Campaign:
    """The stream through the faulty network (`runs` runs at once, each the whole stream
    in its own order; the CRM limited to `rate_limit` requests a second, 429 with
    Retry-After); the CRM then reconciled with the truth."""
    crm.clear_faults()
    crm.reset()
    stream = generate(users, seed=seed, specials=False)
    stream.seed_preexisting(lambda fields: crm.seed_contact(**fields))
    network = Faulty(rng=random.Random(seed))
    client = RestCrmClient(
        crm.base_url,
        lambda: crm.token,
        timeout_seconds=2.0,
        backoff_base=0.01,
        session=network,
    )
    settings = Settings(crm_base_url=crm.base_url, crm_api_token="unused")  # noqa: S106
    core = SyncCore(settings, client if guarded else Unconditional(client), MemorySyncStateStore())
    started = time.perf_counter()
    crm.set_rate_limit(rate_limit)
    left = _concurrently(core, stream.events, network, runs, random.Random(seed))
    crm.set_rate_limit(None)
    seconds = time.perf_counter() - started
    found = kinds(reconcile(stream.truth, crm.contacts()))
    return _result(stream.events * runs, network, found, left, seconds)


def _concurrently(
    core: SyncCore, events: list[dict[str, Any]], network: Faulty, runs: int, rng: random.Random
) -> int:
    """`runs` runs of every event at once, each in its own order: events left + dead."""
    orders = [list(events)] + [rng.sample(events, len(events)) for _ in range(runs - 1)]
    left: list[int] = []

    def one(order: list[dict[str, Any]]) -> None:
        queue, dead = _deliver(core, order, network)
        left.append(len(queue) + dead)

    threads = [threading.Thread(target=one, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(left)


def hubspot_campaign(*, users: int, seed: int, unique_owner: bool) -> Campaign:
    """The campaign against the fake HubSpot (search lag 1 s; no preconditions)."""
    from auth0_sync.destinations.hubspot import HubSpotCrm
    from auth0_sync.names import CrmType
    from auth0_sync_cli.fakes.hubspot import FakeHubSpot

    with FakeHubSpot(
        window_calls=1_000_000,
        search_per_second=1_000_000,
        unique_owner=unique_owner,
        search_lag_seconds=1.0,
    ) as hubspot:
        stream = generate(users, seed=seed, specials=False)
        stream.seed_preexisting(lambda fields: hubspot.seed_contact(**fields))
        network = Faulty(rng=random.Random(seed))
        client = HubSpotCrm(
            hubspot.base_url,
            lambda: hubspot.token,
            timeout_seconds=2.0,
            backoff_base=0.01,
            window_calls=1_000_000,
            search_per_second=1_000_000,
            search_lag_seconds=1.2,
            late_write_seconds=2.0,
            session=network,
        )
        settings = Settings(
            crm_type=CrmType.HUBSPOT,
            crm_base_url=hubspot.base_url,
            crm_api_token="unused",  # noqa: S106
        )
        started = time.perf_counter()
        core = SyncCore(settings, client, MemorySyncStateStore())
        queue, dead = _deliver(core, stream.events, network, settle=2.0)
        seconds = time.perf_counter() - started
        found = kinds(
            reconcile(
                stream.truth,
                hubspot.generic_contacts(),
                fields=("email", "given_name", "family_name", "phone"),
                stored=lambda name, value: (
                    value.lower() if name == "email" and isinstance(value, str) else value
                ),
            )
        )
    return _result(stream.events, network, found, dead + len(queue), seconds)


def _deliver(
    core: SyncCore,
    events: list[dict[str, Any]],
    network: Faulty,
    rounds: int = ROUNDS,
    settle: float = 0.0,
) -> tuple[list[dict[str, Any]], int]:
    """Every event, retried in rounds like Lambda while the faults go on; then the network
    heals, every held write lands, and the redrive (`settle` seconds later) retries what is
    left, as often as a transient reason asks. What is left, and the dead letters."""
    now = max(parse_event(raw).change_time for raw in events)
    queue, dead = list(events), 0
    for round_number in range(rounds + 3):
        if round_number == rounds:
            network.enabled = False
            network.wait_for_landings()
            time.sleep(settle)
        retry = []
        for raw in queue:
            try:
                core.apply(parse_event(raw, now=now), lease_seconds=30.0)
            except TransientError:
                retry.append(raw)
            except PermanentError:
                dead += 1
        queue = retry
        if not queue:
            break
        time.sleep(ROUND_PAUSE)
    network.wait_for_landings()
    return queue, dead


def _result(
    events: list[dict[str, Any]], network: Faulty, found: Counter[str], left: int, seconds: float
) -> Campaign:
    return Campaign(
        events=len(events),
        dropped=network.dropped,
        held=network.held,
        late_refused=network.landed[412],
        late_applied=sum(n for status, n in network.landed.items() if status < 300),
        lost=found["missing"],
        duplicates=found["duplicate"],
        wrong=sum(found.values()) - found["missing"] - found["duplicate"],
        left=left,
        problems=found,
        seconds=seconds,
    )


def run(
    _peers: Peers | None = None, *, users: int = 120, seed: int = 22, kill_users: int = 20
) -> Section:
    with CrmServer() as crm:
        ours = campaign(crm, users=users, seed=seed, guarded=True)
        naive = campaign(crm, users=users, seed=seed, guarded=False)
        busy = campaign(crm, users=users, seed=seed, guarded=True, runs=3, rate_limit=200.0)
    unique = hubspot_campaign(users=users, seed=seed, unique_owner=True)
    plain = hubspot_campaign(users=users, seed=seed, unique_owner=False)
    children = fault_kills.campaigns(users=kill_users, seed=seed)
    every: list[Campaign | fault_kills.KillCampaign] = [ours, busy, unique, plain, *children]
    clean = all(c.lost == c.duplicates == c.wrong == c.left == 0 for c in every)
    section = Section(
        title="Faults between the sync and the CRM: dropped answers, late-applied writes",
        method=(
            f"a seeded sample stream ({users} users, redeliveries, out-of-order arrivals) "
            "through the sync core and the REST adapter against the reference CRM, through a "
            f"network that loses the answer of {DROP_SHARE:.0%} of the CRM writes after they "
            f"were applied and holds {LATE_SHARE:.0%} of the PATCHes, applying them 0.2-1.5 s "
            f"later; failed events retried in rounds; the CRM then reconciled with the "
            "stream's Auth0 truth; once more with 3 runs of the stream at once and the CRM "
            "limited to 200 requests a second. The same against the fake HubSpot (search index 1 s "
            "behind), with a unique auth0_user_id and without. Then `auth0-sync process` as "
            f"a child process ({kill_users} users) against local AWS and the reference CRM: "
            "killed with SIGKILL at random moments and while a CRM write was unanswered, "
            "then rerun; the CRM token rotated mid-run; 30% of DynamoDB requests "
            "throttled; each followed by a DLQ replay. Baseline: REST, writes without If-Match"
        ),
        runs=f"1 campaign each, seed {seed}",
    )
    section.rows.append(
        Row(
            "faults (REST x2, HubSpot x2, kills, rotation, throttling): contacts lost / "
            "duplicated / wrong, events left",
            " / ".join(
                str(sum(getattr(c, name) for c in every))
                for name in ("lost", "duplicates", "wrong")
            )
            + f", {sum(c.left for c in every)}",
            f"{naive.lost} / {naive.duplicates} / {naive.wrong}, {naive.left}",
            None,
            "0 / 0 / 0, 0",
            clean,
        )
    )
    section.detail += [
        "| | events | answers dropped | writes held | late: refused (412) | late: applied "
        "| lost | duplicates | wrong | left for a person | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {c.events} | {c.dropped} | {c.held} | {c.late_refused} "
            f"| {c.late_applied} | {c.lost} | {c.duplicates} | {c.wrong} | {c.left} "
            f"| {c.seconds:.1f} |"
            for name, c in (
                ("REST, ours (If-Match)", ours),
                ("REST, without a precondition", naive),
                ("REST, 3 runs at once, 200 req/s limit", busy),
                ("HubSpot, unique auth0_user_id", unique),
                ("HubSpot, plain auth0_user_id", plain),
            )
        ),
    ]
    section.detail += [
        "",
        "| `process` in a child process | events | faults injected | dead letters before "
        "the replay | lost | duplicates | wrong | left for a person | exit codes | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {c.name} | {c.events} | {c.faults} | {c.dead_before_replay} | {c.lost} "
            f"| {c.duplicates} | {c.wrong} | {c.left} "
            f"| {' '.join(map(str, c.exits))} | {c.seconds:.1f} |"
            for c in children
        ),
    ]
    if naive.problems:
        shown = ", ".join(f"{kind} {n}" for kind, n in sorted(naive.problems.items()))
        section.notes.append(f"What the baseline got wrong: {shown}.")
    for child in children:
        if child.problems:
            shown = ", ".join(f"{kind} {n}" for kind, n in sorted(child.problems.items()))
            section.notes.append(f"What {child.name} left wrong: {shown}.")
    section.notes.append(
        "A late write landing after a newer one: with If-Match it is refused (412) and "
        "changes nothing; without, it silently reverts the newer change."
    )
    return section


if __name__ == "__main__":
    result = run()
    for row in result.rows:
        print(f"{row.figure}: ours {row.ours}, baseline {row.baseline}, met {row.met}")
    print("\n".join(result.detail + result.notes))
