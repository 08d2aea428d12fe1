"""Realistic Auth0 event streams with their known truth, for the demo, tests and benchmarks.

Each user gets a history (signup, profile changes, login noise, maybe a delete); the stream
then gets what at-least-once, unordered delivery does to it (duplicates, reordering) plus the
odd events a real bus carries (a test event, a malformed event, an unknown type). Optional
`cases` add the identity lifecycles every tenant has: re-signups (the same social id, or a
new database id with the old email), account linking (both arrival orders), hints in
`app_metadata` pointing at another user's contact, an email swap, removed fields, change
times without an offset, equal change times, contacts from before that nobody claims,
users without an email, an unverified signup beside the address's verified owner, and
blocked users. A user who claims a contact from before by its email has a verified
address (the sync claims by verified addresses only).

The generator keeps its own model of every identity (`truth.Person`), and the truth (what
the CRM must hold once everything has been applied, whatever the order) is computed from
that model by `truth.py`, never from the sync's own mapping.
"""

from __future__ import annotations

import copy
import random
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from auth0_sync.names import LEGACY_TYPE_PREFIX, PARTNER_SOURCE_PREFIX, SkipReason
from auth0_sync_cli import sample_orgs
from auth0_sync_cli.sample_orgs import Lifetime, OrgPlan, SampleOrg
from auth0_sync_cli.truth import (
    ACTIVE,
    CREATED,
    DEACTIVATED,
    DELETED,
    MAPPED_ATTRIBUTES,
    RANK,
    UPDATED,
    Change,
    Person,
    Preexisting,
    Truth,
    Value,
    reconcile,
)

__all__ = [
    "ACTIVE",
    "ALL_CASES",
    "DEACTIVATED",
    "EPOCH",
    "SampleStream",
    "bus_event",
    "generate",
    "reconcile",
]

TENANT = "acme"
PARTNER_SOURCE = f"{PARTNER_SOURCE_PREFIX}/{TENANT}-5c8d1e0b/auth0.events"
STREAM_ID = "est_9hQw2ZpL6rTy4KmN8bVx3s"
EPOCH = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Lifecycles that come back later (re-signups, hints, the email swap) happen a day on.
LATER = EPOCH + timedelta(days=1)

FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
DATABASE = "Username-Password-Authentication"
GOOGLE = "google-oauth2"

ALL_CASES: tuple[str, ...] = (
    "resignup_social",  # a social id deleted, then signed up again: the same id comes back
    "resignup_new_id",  # a database user deleted, then a new id with the same email
    "linking",  # account linking, secondary with its own email or the primary's, both orders
    "hints",  # app_metadata.crm_contact_id pointing at another user's contact
    "email_swap",  # A takes B's email and B takes A's
    "removals",  # a field removed: explicit null, "", or gone since previous_object
    "naive_times",  # change times without an offset ("2026-03-04T10:15:30": UTC)
    "ties",  # equal change times: created vs updated, updated vs deleted
    "bystanders",  # contacts from before that no Auth0 user claims: left untouched
    "no_email",  # passwordless SMS users: no email, never synced, no CRM call
    "unverified",  # an unverified signup with the address of a contact its owner claims
    "blocking",  # a user blocked (and edited while blocked), another blocked then unblocked
    "unlinking",  # a secondary linked into a primary, then unlinked: its own life again
)
NAIVE_SHARE = 0.05  # of the change times, with naive_times
HINT_PREFIX = "crm-hint-"  # app_metadata ids before the contacts they point at are seeded
# The model's id of a pre-stream user's backfill snapshot (the change the backfill applies).
BACKFILL_ID_PREFIX = "backfill:"


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_id(rng: random.Random) -> str:
    return "evt_" + "".join(rng.choices(string.ascii_letters + string.digits, k=22))


def bus_event(
    event_type: str,
    obj: dict[str, Any],
    moment: datetime,
    event_id: str,
    *,
    previous_object: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An Auth0 CloudEvent wrapped in the EventBridge envelope, as it arrives on the bus."""
    data: dict[str, Any] = {"object": obj}
    if previous_object is not None:
        data["previous_object"] = previous_object
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
            "data": data,
            **extra,
        },
    }


@dataclass
class SampleStream:
    """A delivered stream, the model of every identity in it, and the contacts from before."""

    events: list[dict[str, Any]]
    people: dict[str, Person]
    # Contacts already in the CRM before the stream: seed them with `seed_preexisting`.
    preexisting: list[Preexisting] = field(default_factory=list)
    # Event ids that must end in the DLQ whatever happens (malformed input).
    poison_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    # Events outside the model and the only skip reason each may get (none: the DLQ).
    special_skips: dict[str, frozenset[str]] = field(default_factory=dict)
    # Placeholder contact ids in app_metadata -> the pre-existing contact they point at.
    hints: dict[str, int] = field(default_factory=dict)
    # The Auth0 users that existed before the stream, as a users export lists them then
    # (what `auth0-sync backfill --export` reads); their signups are not in the stream.
    existing: list[dict[str, Any]] = field(default_factory=list)
    # With `organizations`: each organization as Auth0 has it at the end (the truth).
    organizations: dict[str, SampleOrg] = field(default_factory=dict)

    def export_now(self) -> list[dict[str, Any]]:
        """A users export taken after the stream: every user Auth0 still has (deleted and
        linked secondaries are gone), as the model's profile of it stands now."""
        return [
            copy.deepcopy(person.profile)
            for person in self.people.values()
            if person.alive and person.linked_into is None
        ]

    @cached_property
    def truth(self) -> Truth:
        """What the CRM must hold, and which skips are fair, once the stream is applied."""
        copies = Counter(str(e["detail"]["id"]) for e in self.events)
        return Truth.of(self.people, self.preexisting, copies, self.special_skips)

    def seed_preexisting(self, create: Callable[[dict[str, Any]], Mapping[str, Any]]) -> None:
        """Put the contacts from before into a CRM with `create` (fields -> the contact made),
        note their ids, and point the stream's `app_metadata` hints at them."""
        for item in self.preexisting:
            item.contact_id = str(create(dict(item.fields))["id"])
        for event in self.events:
            metadata = event["detail"]["data"]["object"].get("app_metadata")
            hint = metadata.get("crm_contact_id") if isinstance(metadata, dict) else None
            if isinstance(hint, str) and hint in self.hints:
                metadata["crm_contact_id"] = self.preexisting[self.hints[hint]].contact_id


def _profile(
    rng: random.Random, user_id: str, number: int, *, phone: bool | None = None
) -> dict[str, Any]:
    """A new Auth0 profile (no timestamps yet: the signup sets them)."""
    given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    provider, _, raw_id = user_id.partition("|")
    social = provider != "auth0"
    profile: dict[str, Any] = {
        "user_id": user_id,
        "email": f"{given.lower()}.{family.lower()}.{number}@example.com",
        "email_verified": social,
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "nickname": given.lower(),
        "picture": f"https://cdn.example.com/avatars/{number}.png",
        "logins_count": 0,
        "app_metadata": {},
        "user_metadata": {"plan": "free"},
        "identities": [
            {
                "connection": provider if social else DATABASE,
                "provider": provider,
                "user_id": raw_id,
                "isSocial": social,
            }
        ],
    }
    if phone or (phone is None and rng.random() < 0.6):
        profile["phone_number"] = f"+4477009{number:05d}"
    return profile


def _change(
    rng: random.Random, profile: dict[str, Any], number: int, step: int, *, email: bool = True
) -> None:
    """A profile change a CRM may or may not care about (mapped or unmapped attributes)."""
    kind = rng.choice(["name", "phone", "email", "family_name", "verified", "picture", "plan"])
    if kind == "email" and not email:
        kind = "name"  # its email must stay the one that finds its contact from before
    if kind == "name":
        profile["given_name"] = rng.choice(FIRST_NAMES)
        profile["name"] = f"{profile['given_name']} {profile.get('family_name', '')}".strip()
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


def _shown(profile: Mapping[str, Any]) -> dict[str, Value]:
    """The mapped attributes a full profile shows (the model never holds empty values)."""
    return {name: profile[name] for name in MAPPED_ATTRIBUTES if name in profile}


class _Writer:
    """Builds the stream: each verb changes the model of one identity and emits its event."""

    def __init__(self, rng: random.Random, naive_share: float = 0.0) -> None:
        self.rng = rng
        self.naive_share = naive_share
        self.people: dict[str, Person] = {}
        self.timeline: list[tuple[tuple[datetime, int, int], dict[str, Any]]] = []
        self.preexisting: list[Preexisting] = []
        self.counts: Counter[str] = Counter()
        self.first_before: list[tuple[str, str]] = []  # (delivered first, delivered after)
        self.late_copies: list[tuple[str, str]] = []  # (a copy of this, delivered after this)
        self.hints: dict[str, int] = {}
        self.export_before: list[dict[str, Any]] = []  # the users export before the stream

    def person(self, profile: dict[str, Any]) -> Person:
        person = Person(profile["user_id"], profile)
        self.people[person.user_id] = person
        return person

    def seed(self, fields: dict[str, Any]) -> int:
        self.preexisting.append(Preexisting(fields))
        return len(self.preexisting) - 1

    def hint(self, index: int) -> str:
        placeholder = f"{HINT_PREFIX}{index}"
        self.hints[placeholder] = index
        return placeholder

    def _moment(self, at: datetime, naive: bool | None) -> tuple[datetime, str]:
        """The change time exactly as the event carries it, and its text."""
        if naive is None:
            naive = self.naive_share > 0 and self.rng.random() < self.naive_share
        if naive:
            self.counts["naive_times"] += 1
            at = at.replace(microsecond=0)
            return at, at.replace(tzinfo=None).isoformat(timespec="seconds")
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        return at, _stamp(at)

    def _emit(
        self,
        person: Person,
        kind: str,
        at: datetime,
        obj: dict[str, Any],
        shown: Mapping[str, Value],
        previous: dict[str, Any] | None = None,
    ) -> Change:
        event_id = _event_id(self.rng)
        change = person.record(kind, event_id, at, shown)
        event = bus_event(kind, obj, at, event_id, previous_object=previous)
        self.timeline.append(((at, RANK[kind], len(self.timeline)), event))
        return change

    def signup(self, person: Person, at: datetime, *, naive: bool | None = None) -> Change:
        at, text = self._moment(at, naive)
        person.profile["created_at"] = person.profile["updated_at"] = text
        self.counts["signups"] += 1
        profile = copy.deepcopy(person.profile)
        return self._emit(person, CREATED, at, profile, _shown(person.profile))

    def before_stream(self, person: Person, at: datetime) -> Change:
        """A user that signed up before the stream: no event, a line of the export instead
        (the backfill's snapshot of it, which the model notes as its first change)."""
        at, text = self._moment(at, False)
        person.profile["created_at"] = person.profile["updated_at"] = text
        self.counts["existing"] += 1
        self.export_before.append(copy.deepcopy(person.profile))
        snapshot = BACKFILL_ID_PREFIX + person.user_id
        return person.record(CREATED, snapshot, at, _shown(person.profile))

    def update(
        self,
        person: Person,
        at: datetime,
        *,
        removal: tuple[str, str] | None = None,
        naive: bool | None = None,
    ) -> Change:
        """A user.updated with the full profile as it is now; `removal` (attribute, how:
        null, empty or previous) removes one mapped attribute in this event."""
        at, text = self._moment(at, naive)
        before = copy.deepcopy(person.profile)
        person.profile["updated_at"] = text
        shown = _shown(person.profile)
        obj = copy.deepcopy(person.profile)
        previous = None
        if removal is not None:
            attribute, how = removal
            del person.profile[attribute]  # Auth0 drops a removed attribute
            shown[attribute] = None
            if how == "null":
                obj[attribute] = None
            elif how == "empty":
                obj[attribute] = ""
            else:
                del obj[attribute]
                previous = before
            self.counts["removals"] += 1
        return self._emit(person, UPDATED, at, obj, shown, previous)

    def delete(
        self, person: Person, at: datetime, *, minimal: bool, naive: bool | None = None
    ) -> Change:
        """A user.deleted: older tenants send only user_id and deleted_at."""
        at, text = self._moment(at, naive)
        gone: dict[str, Any] = {"user_id": person.user_id, "deleted_at": text}
        if not minimal:  # newer tenants send the full profile with the delete
            gone = {**copy.deepcopy(person.profile), **gone}
        self.counts["deletes"] += 1
        return self._emit(person, DELETED, at, gone, {})

    def link(self, primary: Person, secondary: Person, at: datetime, *, delete_first: bool) -> None:
        """Auth0 account linking: the primary's user.updated lists the secondary in
        `identities[]`, and the secondary gets a user.deleted."""
        provider, _, raw_id = secondary.user_id.partition("|")
        primary.profile["identities"].append(
            {
                "provider": provider,
                "user_id": raw_id,
                "connection": secondary.profile["identities"][0]["connection"],
                "isSocial": provider != "auth0",
                "profileData": {"email": secondary.profile["email"]},
            }
        )
        update = self.update(primary, at, naive=False)
        gone = self.delete(
            secondary, at + timedelta(milliseconds=200), minimal=delete_first, naive=False
        )
        secondary.linked_into = primary.user_id
        self.counts["deletes"] -= 1
        self.counts["links"] += 1
        first, then = (gone, update) if delete_first else (update, gone)
        self.first_before.append((first.event_id, then.event_id))


def _ordinary_users(
    w: _Writer,
    users: int,
    *,
    updates_per_user: tuple[int, int],
    login_share: float,
    delete_share: float,
    preexisting_share: float,
    existing_share: float = 0.0,
    existing_rng: random.Random | None = None,
) -> None:
    rng = w.rng
    before = existing_rng or random.Random(0)
    for number in range(users):
        user_id = f"auth0|{number:024x}"
        moment = EPOCH + timedelta(seconds=rng.uniform(0, 3600))
        person = w.person(_profile(rng, user_id, number))
        if rng.random() < preexisting_share:
            seed: dict[str, Any] = {
                "email": person.profile["email"].upper(),
                "name": "From the old CRM",
            }
            if "phone_number" not in person.profile and rng.random() < 0.5:
                seed["phone"] = f"+1 555 01{number % 100:02d}"  # kept: the user has none
            person.claims = w.seed(seed)
            person.profile["email_verified"] = True  # only a verified address claims
        steps = rng.randint(*updates_per_user)
        if existing_share and before.random() < existing_share:
            # Signed up before the stream: the backfill brings it; half of them change
            # again during the stream (after the backfill), half never do.
            w.before_stream(person, EPOCH - timedelta(days=before.uniform(1, 30)))
            steps = steps if before.random() < 0.5 else 0
        else:
            w.signup(person, moment)
        for step in range(steps):
            moment += timedelta(seconds=rng.uniform(1, 600))
            if rng.random() < login_share:
                _login(rng, person.profile, moment)
                w.counts["logins"] += 1
            else:
                _change(rng, person.profile, number, step, email=person.claims is None)
                w.counts["profile_changes"] += 1
            w.update(person, moment)
        if rng.random() < delete_share:
            moment += timedelta(seconds=rng.uniform(1, 600))
            w.delete(person, moment, minimal=rng.random() >= 0.5)


class _Cases:
    """The lifecycles of ALL_CASES, each adding its own identities to the stream."""

    def __init__(self, w: _Writer, rng: random.Random, first_number: int) -> None:
        self.w = w
        self.rng = rng
        self.number = first_number

    def _new(self, *, social: bool = False, phone: bool | None = None) -> Person:
        number = self.number
        self.number += 1
        user_id = f"{GOOGLE}|{10**20 + number}" if social else f"auth0|{number:024x}"
        return self.w.person(_profile(self.rng, user_id, number, phone=phone))

    def _after(self, moment: datetime, low: float = 60, high: float = 600) -> datetime:
        return moment + timedelta(seconds=self.rng.uniform(low, high))

    def _early(self) -> datetime:
        # Early in the stream: delivered before the CRM's faults (and long before LATER).
        return EPOCH + timedelta(seconds=self.rng.uniform(0, 120))

    def _rename(self, person: Person) -> None:
        """A new given name, always another one."""
        others = [name for name in FIRST_NAMES if name != person.profile["given_name"]]
        person.profile["given_name"] = self.rng.choice(others)
        person.profile["name"] = f"{person.profile['given_name']} {person.profile['family_name']}"

    def resignup_social(self, i: int) -> None:
        person = self._new(social=True, phone=True)
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 1800))
        self.w.signup(person, moment)
        moment = self._after(moment)
        self._rename(person)
        old = self.w.update(person, moment)
        self.w.delete(person, self._after(moment), minimal=i % 2 == 0)
        # A day on, the same Google account signs up again: the same user id comes back.
        person.profile["family_name"] = self.rng.choice(LAST_NAMES)
        person.profile["name"] = f"{person.profile['given_name']} {person.profile['family_name']}"
        person.profile["phone_number"] = f"+4477{self.rng.randint(10_000_000, 99_999_999)}"
        person.profile["logins_count"] = 0
        moment = LATER + timedelta(seconds=self.rng.uniform(0, 1800))
        new = self.w.signup(person, moment)
        person.profile["phone_number"] = f"+4477{self.rng.randint(10_000_000, 99_999_999)}"
        self.w.update(person, self._after(moment))
        # An old life's event redelivered after the new life began: it must not win.
        self.w.late_copies.append((old.event_id, new.event_id))
        self.w.counts["resignups_same_id"] += 1

    def resignup_new_id(self, _i: int) -> None:
        former = self._new(phone=True)
        moment = self._early()
        self.w.signup(former, moment)
        moment = self._after(moment, 5, 30)
        self._rename(former)
        self.w.update(former, moment)
        self.w.delete(former, self._after(moment, 5, 30), minimal=True)
        # A day on, the same person signs up again: a new database id, the same email.
        again = self._new(phone=True)
        for name in ("email", "name", "given_name", "family_name"):
            again.profile[name] = former.profile[name]
        again.reclaims = former.user_id
        again.profile["email_verified"] = True  # only a verified address claims
        moment = LATER + timedelta(seconds=self.rng.uniform(0, 1800))
        self.w.signup(again, moment)
        again.profile["phone_number"] = f"+4477{self.rng.randint(10_000_000, 99_999_999)}"
        self.w.update(again, self._after(moment))
        self.w.counts["resignups_new_id"] += 1

    def linking(self, i: int) -> None:
        shared, delete_first = i % 2 == 1, (i // 2) % 2 == 1
        primary = self._new(phone=True)
        secondary = self._new(social=True)
        if shared:
            # The user signed up with Google first, then with a password and the same
            # email, and linked the Google account into the new one: the secondary held
            # the contact with that email first.
            for name in ("email", "name", "given_name", "family_name"):
                secondary.profile[name] = primary.profile[name]
            primary.profile["email_verified"] = True
            moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
            self.w.signup(secondary, moment)
            moment = self._after(moment)
            self.w.signup(primary, moment)
            link_at = self._after(moment, 1, 30)
        else:
            moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
            self.w.signup(primary, moment)
            moment = self._after(moment)
            self.w.signup(secondary, moment)
            moment = self._after(moment)
            _login(self.rng, secondary.profile, moment)
            self.w.update(secondary, moment)
            link_at = self._after(moment)
        self.w.link(primary, secondary, link_at, delete_first=delete_first)
        # The primary lives on; its next change must reach its contact.
        self._rename(primary)
        self.w.update(primary, self._after(link_at))

    def hints(self, _i: int) -> None:
        owner = self._new()
        owner.claims = self.w.seed(
            {"email": owner.profile["email"].upper(), "name": "From the old CRM"}
        )
        owner.profile["email_verified"] = True  # only a verified address claims
        self.w.signup(owner, self._early())
        hint = self.w.hint(owner.claims)
        # An existing user whose app_metadata is set to the other user's contact id...
        user = self._new()
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        self.w.signup(user, moment)
        user.profile["app_metadata"] = {"crm_contact_id": hint}
        self._rename(user)
        self.w.update(user, LATER + timedelta(seconds=self.rng.uniform(0, 1800)))
        # ... and a new user imported with it.
        newcomer = self._new()
        newcomer.profile["app_metadata"] = {"crm_contact_id": hint}
        moment = LATER + timedelta(seconds=self.rng.uniform(0, 1800))
        self.w.signup(newcomer, moment)
        moment = self._after(moment)
        _login(self.rng, newcomer.profile, moment)
        self.w.update(newcomer, moment)
        self.w.counts["hints"] += 2

    def email_swap(self, i: int) -> None:
        first, second = self._new(), self._new(phone=True)
        self.w.signup(first, self._early())
        self.w.signup(second, self._early())
        first_email, second_email = first.profile["email"], second.profile["email"]
        # Auth0 keeps emails unique, so the swap goes through a third address.
        moment = LATER + timedelta(seconds=self.rng.uniform(0, 1800))
        first.profile["email"] = f"swap.{self.number}.{i}@example.org"
        self.w.update(first, moment)
        second.profile["email"] = first_email
        self.w.update(second, moment + timedelta(seconds=5))
        first.profile["email"] = second_email
        self.w.update(first, moment + timedelta(seconds=10))
        second.profile["phone_number"] = f"+4477{self.rng.randint(10_000_000, 99_999_999)}"
        self.w.update(second, moment + timedelta(seconds=60))
        self.w.counts["email_swaps"] += 1

    def removals(self, _i: int) -> None:
        for attribute, how in (
            ("phone_number", "null"),
            ("family_name", "empty"),
            ("phone_number", "previous"),
        ):
            person = self._new(phone=True)
            moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
            self.w.signup(person, moment)
            moment = self._after(moment)
            _login(self.rng, person.profile, moment)
            self.w.update(person, moment)
            self.w.update(person, self._after(moment), removal=(attribute, how))

    def naive_times(self, _i: int) -> None:
        person = self._new()
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        self.w.signup(person, moment, naive=True)
        for step in range(2):
            moment = self._after(moment)
            _change(self.rng, person.profile, self.number, step)
            self.w.update(person, moment, naive=True)

    def ties(self, _i: int) -> None:
        # A signup and an update at the same instant, the update delivered first.
        person = self._new()
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        created = self.w.signup(person, moment, naive=False)
        self._rename(person)
        updated = self.w.update(person, moment, naive=False)
        self.w.first_before.append((updated.event_id, created.event_id))
        # An update and a delete at the same instant, the delete delivered first.
        person = self._new(phone=True)
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        self.w.signup(person, moment, naive=False)
        moment = self._after(moment)
        person.profile["phone_number"] = f"+4477{self.rng.randint(10_000_000, 99_999_999)}"
        updated = self.w.update(person, moment, naive=False)
        gone = self.w.delete(person, moment, minimal=True, naive=False)
        self.w.first_before.append((gone.event_id, updated.event_id))
        self.w.counts["ties"] += 2

    def bystanders(self, i: int) -> None:
        self.w.seed(
            {
                "email": f"former.customer.{i}@example.net",
                "name": "Former Customer",
                "phone": f"+1 555 02{i % 100:02d}",
                "status": DEACTIVATED if i % 2 else ACTIVE,
            }
        )
        self.w.counts["bystanders"] += 1

    def no_email(self, _i: int) -> None:
        # A passwordless SMS user: `phone_number`/`phone_verified`, no email
        # (https://auth0.com/docs/authenticate/passwordless/authentication-methods/sms-otp).
        number = self.number
        self.number += 1
        person = self.w.person(_profile(self.rng, f"sms|{number:024x}", number, phone=True))
        for name in ("email", "email_verified"):
            del person.profile[name]
        person.profile["phone_verified"] = True
        person.unsynced = str(SkipReason.NO_EMAIL)
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        self.w.signup(person, moment)
        moment = self._after(moment)
        _login(self.rng, person.profile, moment)
        self.w.update(person, moment)
        self._rename(person)
        self.w.update(person, self._after(moment))
        self.w.counts["no_email"] += 1

    def unverified(self, _i: int) -> None:
        # A database signup with someone else's address (`email_verified: false` until the
        # link is clicked) and the address's owner, verified by Google: the contact from
        # before is the owner's, whichever comes first.
        owner = self._new(social=True)
        owner.claims = self.w.seed({"email": owner.profile["email"], "name": "From the old CRM"})
        impostor = self._new()
        impostor.profile["email"] = owner.profile["email"]
        impostor.unsynced = str(SkipReason.EMAIL_UNVERIFIED)
        moment = self._early()
        first = self.w.signup(impostor, moment)
        moment = self._after(moment)
        _login(self.rng, impostor.profile, moment)
        self.w.update(impostor, moment)
        then = self.w.signup(owner, self._after(moment))
        self.w.first_before.append((first.event_id, then.event_id))
        self.w.counts["unverified"] += 1

    def blocking(self, _i: int) -> None:
        for unblocked in (False, True):
            person = self._new(phone=True)
            moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
            self.w.signup(person, moment)
            moment = self._after(moment)
            person.profile["blocked"] = True  # Auth0's root attribute while blocked
            self.w.update(person, moment)
            moment = self._after(moment)
            self._rename(person)
            self.w.update(person, moment)  # edited while blocked
            if unblocked:
                person.profile["blocked"] = False
                self.w.update(person, self._after(moment))
            person.blocked = not unblocked
            self.w.counts["blocked"] += 1

    def unlinking(self, _i: int) -> None:
        # Unlinking makes the secondary a standalone user again with the same user_id
        # (Auth0: "a new secondary user account is created", with no metadata) and the
        # primary's identities[] no longer lists it
        # (https://auth0.com/docs/manage-users/user-accounts/user-account-linking/unlink-user-accounts).
        primary, secondary = self._new(phone=True), self._new(social=True)
        moment = EPOCH + timedelta(seconds=self.rng.uniform(0, 3000))
        self.w.signup(primary, moment)
        moment = self._after(moment)
        self.w.signup(secondary, moment)
        link_at = self._after(moment)
        self.w.link(primary, secondary, link_at, delete_first=False)
        unlink_at = self._after(link_at)
        primary.profile["identities"] = primary.profile["identities"][:1]
        self.w.update(primary, unlink_at, naive=False)
        secondary.linked_into, secondary.unlinked_from = None, primary.user_id
        secondary.linked_life = secondary.life
        secondary.profile["app_metadata"] = {}
        moment = self._after(unlink_at)
        self.w.signup(secondary, moment, naive=False)
        self._rename(secondary)
        self.w.update(secondary, self._after(moment), naive=False)
        self.w.counts["unlinks"] += 1


def _choose(cases: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(cases)
    unknown = sorted(set(chosen) - set(ALL_CASES))
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; choose from {list(ALL_CASES)}")
    return tuple(case for case in ALL_CASES if case in chosen)


def _first_positions(events: list[dict[str, Any]]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, event in enumerate(events):
        positions.setdefault(event["detail"]["id"], index)
    return positions


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
    existing_share: float = 0.0,
    specials: bool = True,
    cases: Iterable[str] = (),
    organizations: int = 0,
) -> SampleStream:
    """A seeded stream over `users` users, plus the identities of the chosen `cases` (see
    ALL_CASES; none: the simple stream); the same arguments always give the same stream.
    `existing_share`: the share of the users that signed up before the stream (in
    `SampleStream.existing`, for a backfill, instead of a signup event). `organizations`:
    that many Auth0 organizations over the ordinary users (`sample_orgs`)."""
    chosen = _choose(cases)
    rng = random.Random(seed)
    w = _Writer(rng, naive_share=NAIVE_SHARE if "naive_times" in chosen else 0.0)
    _ordinary_users(
        w,
        users,
        updates_per_user=updates_per_user,
        login_share=login_share,
        delete_share=delete_share,
        preexisting_share=preexisting_share,
        existing_share=existing_share,
        existing_rng=random.Random(f"existing-{seed}"),
    )
    lifecycles = _Cases(w, random.Random(f"cases-{seed}"), first_number=users)
    for case in chosen:
        for i in range(max(1, users // 100) * (4 if case == "linking" else 1)):
            getattr(lifecycles, case)(i)

    plan = OrgPlan()
    if organizations:
        times = [key[0] for key, _ in w.timeline]
        plan = sample_orgs.organizations(
            random.Random(f"orgs-{seed}"),
            _lifetimes(w),
            organizations,
            min(times),
            max(times),
            bus_event,
        )
        w.timeline += [((at, 0, len(w.timeline) + n), e) for n, (at, e) in enumerate(plan.events)]
        w.first_before += plan.early
        w.counts["organization_events"] = len(plan.events)
        w.counts["memberships_before_their_user"] = len(plan.early)

    w.timeline.sort(key=lambda item: item[0])
    events = [event for _, event in w.timeline]
    history = len(events)
    # Reordering: move a share of events later than they happened (never past a far end).
    for _ in range(int(len(events) * out_of_order_share)):
        i = rng.randrange(len(events))
        event = events.pop(i)
        events.insert(min(len(events), i + rng.randint(1, 40)), event)
    # Redelivery: copies of a share of events, arriving a little later.
    for _ in range(int(len(events) * duplicate_share)):
        i = rng.randrange(len(events))
        events.insert(min(len(events), i + rng.randint(1, 25)), copy.deepcopy(events[i]))
    w.counts["duplicates"] = int(history * duplicate_share)
    # The arrival orders some lifecycles are about, whatever the shuffle did.
    for first, then in w.first_before:
        at = _first_positions(events)
        if at[first] > at[then]:
            events[at[first]], events[at[then]] = events[at[then]], events[at[first]]
    for copied, after in w.late_copies:
        at = _first_positions(events)
        events.insert(at[after] + 1, copy.deepcopy(events[at[copied]]))
        w.counts["duplicates"] += 1

    poison: list[str] = []
    special: dict[str, frozenset[str]] = {}
    if specials:
        user_events = [e for e in events if str(e["detail"]["type"]).startswith("user.")]
        some = user_events[len(user_events) // 2]["detail"]["data"]["object"]
        test = bus_event("user.updated", dict(some), EPOCH, _event_id(rng), a0purpose="test")
        malformed = bus_event(
            "user.created", {"email": "nobody@example.com"}, EPOCH, _event_id(rng)
        )
        unknown = bus_event("group.created", {"id": "grp_1"}, EPOCH, _event_id(rng))
        legacy = copy.deepcopy(user_events[len(user_events) // 3])
        legacy["detail"]["type"] = LEGACY_TYPE_PREFIX + legacy["detail"]["type"]
        for extra in (test, malformed, unknown, legacy):
            events.insert(rng.randrange(len(events)), extra)
        poison.append(malformed["detail"]["id"])
        special[test["detail"]["id"]] = frozenset({str(SkipReason.TEST_EVENT)})
        special[unknown["detail"]["id"]] = frozenset({str(SkipReason.UNKNOWN_TYPE)})
        special[malformed["detail"]["id"]] = frozenset()
    counts = {
        "signups": 0,
        "profile_changes": 0,
        "logins": 0,
        "deletes": 0,
        **w.counts,
    }
    return SampleStream(
        events,
        w.people,
        w.preexisting,
        poison,
        counts,
        special,
        w.hints,
        w.export_before,
        plan.orgs,
    )


def _lifetimes(w: _Writer) -> list[Lifetime]:
    """The ordinary users an organization may have as members: one life begun in the
    stream, synced, never linked nor taking over another's contact."""
    lives = []
    for person in w.people.values():
        if (
            person.life != 1
            or person.linked_into
            or person.unlinked_from
            or person.unsynced
            or person.reclaims
            or any(c.event_id.startswith(BACKFILL_ID_PREFIX) for c in person.changes)
        ):
            continue
        signup = next(c for c in person.changes if c.kind == CREATED)
        ended = next((c.at for c in person.changes if c.kind == DELETED), None)
        lives.append(Lifetime(person.user_id, signup.event_id, signup.at, ended))
    return sorted(lives, key=lambda life: life.user_id)
