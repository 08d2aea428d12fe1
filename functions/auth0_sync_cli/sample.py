"""Realistic Auth0 event streams with their known truth, for the demo, tests and benchmarks.

Each user gets a history (signup, profile changes, login noise, maybe a delete); the stream
then gets what at-least-once, unordered delivery does to it (duplicates, reordering) plus the
odd events a real bus carries (a test event, a malformed event, an unknown type). The
truth is what the CRM must hold once everything has been applied, whatever the order.
"""

from __future__ import annotations

import copy
import random
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from auth0_sync.mapping import present_fields as map_fields
from auth0_sync.names import LEGACY_TYPE_PREFIX, PARTNER_SOURCE_PREFIX
from auth0_sync.settings import DEFAULT_FIELD_MAPPING

TENANT = "acme"
PARTNER_SOURCE = f"{PARTNER_SOURCE_PREFIX}/{TENANT}-5c8d1e0b/auth0.events"
STREAM_ID = "est_9hQw2ZpL6rTy4KmN8bVx3s"
EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ACTIVE, DEACTIVATED = "active", "deactivated"  # the CRM contact statuses of the contract

FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_id(rng: random.Random) -> str:
    return "evt_" + "".join(rng.choices(string.ascii_letters + string.digits, k=22))


def bus_event(
    event_type: str, obj: dict[str, Any], moment: datetime, event_id: str, **extra: Any
) -> dict[str, Any]:
    """An Auth0 CloudEvent wrapped in the EventBridge envelope, as it arrives on the bus."""
    return {
        "version": "0",
        "id": f"eb-{event_id}",
        "detail-type": event_type,
        "source": PARTNER_SOURCE,
        "account": "123456789012",
        "time": _stamp(moment.replace(microsecond=0)),
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "specversion": "1.0",
            "type": event_type,
            "source": f"urn:auth0:{TENANT}.eu.auth0.com",
            "id": event_id,
            "time": _stamp(moment),
            "a0tenant": TENANT,
            "a0stream": STREAM_ID,
            "data": {"object": obj},
            **extra,
        },
    }


@dataclass
class Expected:
    """What the CRM must hold for one Auth0 user once the stream is applied."""

    user_id: str
    fields: dict[str, Any]
    status: str


@dataclass
class SampleStream:
    events: list[dict[str, Any]]
    truth: dict[str, Expected]
    # Contacts already in the CRM before the stream (matched by email, then linked).
    preexisting: list[dict[str, Any]] = field(default_factory=list)
    # Event ids that must end in the DLQ whatever happens (malformed input).
    poison_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _profile(rng: random.Random, user_id: str, number: int, created: datetime) -> dict[str, Any]:
    given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    profile: dict[str, Any] = {
        "user_id": user_id,
        "email": f"{given.lower()}.{family.lower()}.{number}@example.com",
        "email_verified": False,
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "nickname": given.lower(),
        "picture": f"https://cdn.example.com/avatars/{number}.png",
        "created_at": _stamp(created),
        "updated_at": _stamp(created),
        "logins_count": 0,
        "app_metadata": {},
        "user_metadata": {"plan": "free"},
        "identities": [
            {
                "connection": "Username-Password-Authentication",
                "provider": "auth0",
                "user_id": user_id.split("|", 1)[1],
                "isSocial": False,
            }
        ],
    }
    if rng.random() < 0.6:
        profile["phone_number"] = f"+4477009{number:05d}"
    return profile


def _change(rng: random.Random, profile: dict[str, Any], number: int, step: int) -> None:
    """A profile change a CRM may or may not care about (mapped or unmapped attributes)."""
    kind = rng.choice(["name", "phone", "email", "family_name", "verified", "picture", "plan"])
    if kind == "name":
        profile["given_name"] = rng.choice(FIRST_NAMES)
        profile["name"] = f"{profile['given_name']} {profile['family_name']}"
    elif kind == "phone":
        profile["phone_number"] = f"+4477{rng.randint(10_000_000, 99_999_999)}"
    elif kind == "email":
        profile["email"] = f"user{number}.v{step}@example.org"
        profile["email_verified"] = False
    elif kind == "family_name":
        profile["family_name"] = rng.choice(LAST_NAMES)
        profile["name"] = f"{profile['given_name']} {profile['family_name']}"
    elif kind == "verified":
        profile["email_verified"] = True
    elif kind == "picture":
        profile["picture"] = f"https://cdn.example.com/avatars/{number}-{step}.png"
    else:
        profile["user_metadata"] = {"plan": rng.choice(["free", "pro", "team"])}


def _login(rng: random.Random, profile: dict[str, Any], moment: datetime) -> None:
    profile["last_login"] = _stamp(moment)
    profile["logins_count"] = int(profile.get("logins_count", 0)) + 1
    profile["last_ip"] = f"203.0.113.{rng.randint(1, 254)}"


def generate(
    users: int = 200,
    *,
    seed: int = 7,
    updates_per_user: tuple[int, int] = (2, 8),
    login_share: float = 0.7,
    delete_share: float = 0.1,
    duplicate_share: float = 0.1,
    out_of_order_share: float = 0.2,
    preexisting_share: float = 0.1,
    specials: bool = True,
    mapping: Mapping[str, str] = DEFAULT_FIELD_MAPPING,
) -> SampleStream:
    """A seeded stream over `users` users; the same seed always gives the same stream."""
    rng = random.Random(seed)
    history: list[tuple[datetime, dict[str, Any]]] = []
    truth: dict[str, Expected] = {}
    preexisting: list[dict[str, Any]] = []
    counts = {"signups": 0, "profile_changes": 0, "logins": 0, "deletes": 0}
    for number in range(users):
        user_id = f"auth0|{number:024x}"
        moment = EPOCH + timedelta(seconds=rng.uniform(0, 3600))
        profile = _profile(rng, user_id, number, moment)
        history.append(
            (moment, bus_event("user.created", copy.deepcopy(profile), moment, _event_id(rng)))
        )
        counts["signups"] += 1
        if rng.random() < preexisting_share:
            preexisting.append({"email": profile["email"].upper(), "name": "From the old CRM"})
        for step in range(rng.randint(*updates_per_user)):
            moment += timedelta(seconds=rng.uniform(1, 600))
            if rng.random() < login_share:
                _login(rng, profile, moment)
                counts["logins"] += 1
            else:
                _change(rng, profile, number, step)
                counts["profile_changes"] += 1
            profile["updated_at"] = _stamp(moment)
            history.append(
                (moment, bus_event("user.updated", copy.deepcopy(profile), moment, _event_id(rng)))
            )
        status = ACTIVE
        if rng.random() < delete_share:
            moment += timedelta(seconds=rng.uniform(1, 600))
            gone = {"user_id": user_id, "deleted_at": _stamp(moment)}
            if rng.random() < 0.5:  # newer tenants send the full profile with the delete
                gone = {**copy.deepcopy(profile), **gone}
            history.append((moment, bus_event("user.deleted", gone, moment, _event_id(rng))))
            counts["deletes"] += 1
            status = DEACTIVATED
        truth[user_id] = Expected(user_id, map_fields(profile, mapping), status)

    history.sort(key=lambda pair: pair[0])
    events = [event for _, event in history]
    # Reordering: move a share of events later than they happened (never past a far end).
    for _ in range(int(len(events) * out_of_order_share)):
        i = rng.randrange(len(events))
        event = events.pop(i)
        events.insert(min(len(events), i + rng.randint(1, 40)), event)
    # Redelivery: copies of a share of events, arriving a little later.
    for _ in range(int(len(events) * duplicate_share)):
        i = rng.randrange(len(events))
        events.insert(min(len(events), i + rng.randint(1, 25)), copy.deepcopy(events[i]))
    counts["duplicates"] = int(len(history) * duplicate_share)

    poison: list[str] = []
    if specials:
        some = events[len(events) // 2]["detail"]["data"]["object"]
        test = bus_event("user.updated", dict(some), EPOCH, _event_id(rng), a0purpose="test")
        malformed = bus_event(
            "user.created", {"email": "nobody@example.com"}, EPOCH, _event_id(rng)
        )
        unknown = bus_event("organization.created", {"id": "org_1"}, EPOCH, _event_id(rng))
        legacy = copy.deepcopy(events[len(events) // 3])
        legacy["detail"]["type"] = LEGACY_TYPE_PREFIX + legacy["detail"]["type"]
        for special in (test, malformed, unknown, legacy):
            events.insert(rng.randrange(len(events)), special)
        poison.append(malformed["detail"]["id"])
    return SampleStream(events, truth, preexisting, poison, counts)


def reconcile(truth: Mapping[str, Expected], contacts: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every difference between the Auth0 truth and the CRM's contacts (empty: in step)."""
    problems: list[str] = []
    by_user: dict[str, list[Mapping[str, Any]]] = {}
    for contact in contacts:
        owner = contact.get("auth0_user_id")
        if owner:
            by_user.setdefault(str(owner), []).append(contact)
    for user_id, expected in truth.items():
        found = by_user.pop(user_id, [])
        if expected.status == DEACTIVATED:
            # A delete applied before any create/update leaves no contact (deletion is
            # final, nothing resurrects it): either no contact or one deactivated contact.
            if len(found) > 1 or (found and found[0].get("status") != DEACTIVATED):
                states = [c.get("status") for c in found]
                problems.append(f"{user_id}: deleted in Auth0, but the CRM has {states}")
            continue
        if len(found) != 1:
            problems.append(f"{user_id}: expected one contact, found {len(found)}")
            continue
        contact = found[0]
        for name, value in expected.fields.items():
            if contact.get(name) != value:
                problems.append(f"{user_id}: {name} is {contact.get(name)!r}, expected {value!r}")
        if contact.get("status") != expected.status:
            problems.append(
                f"{user_id}: status is {contact.get('status')!r}, expected {expected.status!r}"
            )
    problems.extend(f"{user_id}: contact for a user Auth0 does not have" for user_id in by_user)
    return problems
