"""The Auth0 truth of a sample stream, and the two-sided reconciliation of a CRM against it.

The sample generator keeps a model of every Auth0 identity it invents (`Person`: each event
it emitted, as a `Change` naming the mapped attributes the event shows, its lives, whether
it was linked into another account or re-signed up under a new id). This module turns that
model into what the CRM must hold once the stream is applied, in any delivery order and
with any duplicates, under the default policies:

- delete = deactivate; a missing contact on update = create;
- a mapped attribute absent from an event is kept; one the event shows removed (explicit
  null or "", or present in `previous_object` and gone from `object`) is cleared;
- an event older than the last one applied is skipped; at an equal change time a
  `user.created` never overwrites a `user.updated`, and a `user.deleted` wins over both;
- a re-signup newer than the delete starts a new life; a contact whose owner was deleted
  is taken over by a new identity with the same email; a linked secondary never leaves an
  active contact behind, and its primary keeps exactly one;
- a user without an email, or one whose unverified email only a contact from before
  holds, gets no contact (its events are skipped as `no_email` / `email_unverified`);
- a user blocked at the end of the stream has its contact `deactivated`, with its values.

Nothing here comes from the sync's code: the field mapping is written out below on purpose
(a check that used `auth0_sync.mapping` would agree with its bugs), and every rule above is
applied to the model, not to the events the core reads.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import requests

from auth0_sync.names import SkipReason

# Auth0 attribute -> CRM field: the product's default mapping, written out by hand.
MAPPING: tuple[tuple[str, str], ...] = (
    ("email", "email"),
    ("name", "name"),
    ("given_name", "given_name"),
    ("family_name", "family_name"),
    ("phone_number", "phone"),
)
MAPPED_ATTRIBUTES = tuple(attribute for attribute, _ in MAPPING)
CRM_FIELDS = tuple(crm_field for _, crm_field in MAPPING)

CREATED, UPDATED, DELETED = "user.created", "user.updated", "user.deleted"
# The order of changes at an equal time: created < updated < deleted.
RANK = {CREATED: 0, UPDATED: 1, DELETED: 2}
ACTIVE, DEACTIVATED = "active", "deactivated"  # the CRM contact statuses of the contract

Value = str | None
Options = frozenset[Value]


@dataclass(frozen=True)
class Change:
    """One event of one Auth0 identity, as the generator's model knows it.

    `shown` holds the mapped Auth0 attributes the event mentions: the value it carries, or
    None where it shows the attribute removed. A delete shows nothing.
    """

    event_id: str
    kind: str
    at: datetime
    life: int
    shown: Mapping[str, Value] = field(default_factory=dict)

    @property
    def key(self) -> tuple[datetime, int]:
        """The order of changes: time, then created < updated < deleted at an equal time."""
        return (self.at, RANK[self.kind])


@dataclass
class Person:
    """The generator's model of one Auth0 identity (an Auth0 user id)."""

    user_id: str
    profile: dict[str, Any] = field(default_factory=dict)  # the Auth0 profile as it is now
    alive: bool = False
    life: int = 0  # 1 from the first signup; a re-signup under the same id starts life 2
    linked_into: str | None = None  # the primary, once linked into it as a secondary
    claims: int | None = None  # the pre-existing contact (index) its email matches
    reclaims: str | None = None  # the deleted identity whose contact it takes over
    unsynced: str | None = None  # why the sync never gives it a contact (a skip reason)
    blocked: bool = False  # blocked in Auth0 at the end of the stream
    unlinked_from: str | None = None  # the primary it was linked into, then unlinked from
    linked_life: int = 0  # the life that ended in the link (unlinked: a later life follows)
    changes: list[Change] = field(default_factory=list)

    def record(
        self, kind: str, event_id: str, at: datetime, shown: Mapping[str, Value] | None = None
    ) -> Change:
        """Note one event: a user.created starts a life, a user.deleted ends it."""
        if kind == CREATED:
            if self.alive:
                raise ValueError(f"{self.user_id}: signed up while alive")
            self.life += 1
            self.alive = True
        elif not self.alive:
            raise ValueError(f"{self.user_id}: {kind} outside a life")
        change = Change(event_id, kind, at, self.life, dict(shown or {}))
        if self.changes and change.key <= max(c.key for c in self.changes):
            raise ValueError(f"{self.user_id}: {kind} at {at} is not after its last change")
        if kind == DELETED:
            self.alive = False
        self.changes.append(change)
        return change

    def life_changes(self, life: int) -> list[Change]:
        return sorted((c for c in self.changes if c.life == life), key=lambda c: c.key)


@dataclass
class Preexisting:
    """A contact in the CRM before the stream (CRM fields), and its id once seeded."""

    fields: dict[str, Any]
    contact_id: str | None = None


@dataclass(frozen=True)
class Expected:
    """What the CRM must hold for one Auth0 identity.

    ACTIVE: exactly one contact carries its id, active, with `fields` exactly and each of
    `allowed` one of its options (where the rules leave a field to delivery order).
    DEACTIVATED: every contact carrying its id is deactivated and holds only its own data
    (`allowed`); there must be one when `required`. `taken_over`: no contact may carry its
    id any more (a new identity took its contact over). `preexisting`: the contact from
    before the stream that must be this identity's.
    """

    user_id: str
    status: str
    fields: Mapping[str, Value] = field(default_factory=dict)
    allowed: Mapping[str, Options] = field(default_factory=dict)
    required: bool = True
    taken_over: str | None = None
    preexisting: int | None = None
    ending: str = "alive"  # alive, deleted or linked (into another account)
    story: str = ""
    blocked: bool = False  # ACTIVE's contact shows `deactivated`: the user is blocked
    synced: bool = True  # False: the sync gives this user no contact at all (`unsynced`)


def _none() -> dict[str, Options]:
    return {name: frozenset({None}) for name in CRM_FIELDS}


def _union(left: Mapping[str, Options], right: Mapping[str, Options]) -> dict[str, Options]:
    return {name: left[name] | right[name] for name in CRM_FIELDS}


class _Rules:
    """The expected state of every identity, from the model alone."""

    def __init__(self, people: Mapping[str, Person], preexisting: Sequence[Preexisting]):
        self.people = people
        self.preexisting = preexisting
        self.secondaries: dict[str, list[Person]] = defaultdict(list)
        self.taken_over_by: dict[str, str] = {}
        for person in people.values():
            if person.linked_into is not None:
                self.secondaries[person.linked_into].append(person)
            if person.unlinked_from is not None:
                self.secondaries[person.unlinked_from].append(person)
            if person.reclaims is not None:
                self.taken_over_by[person.reclaims] = person.user_id

    def start(self, person: Person, life: int) -> dict[str, Options]:
        """What the contact of this life may hold before its first event applies."""
        if life > 1:
            # The previous life's contact, reactivated; or none, if that life's delete came
            # first and left nothing to reactivate.
            return _union(self.end(person, life - 1), _none())
        if person.claims is not None:
            seed = self.preexisting[person.claims].fields
            options = {name: frozenset({seed.get(name)}) for name in CRM_FIELDS}
        elif person.reclaims is not None:
            former = self.people[person.reclaims]
            options = _union(self.end(former, former.life), _none())
        else:
            options = _none()
        for secondary in self.secondaries.get(person.user_id, []):
            # A secondary's contact may be handed over to its primary.
            linked_life = secondary.linked_life if secondary.unlinked_from else secondary.life
            options = _union(options, self.end(secondary, linked_life))
        return options

    def end(self, person: Person, life: int) -> dict[str, Options]:
        """Every value the contact may hold when this life ends: any of its events may be
        the last applied (the delete may come first, or after any of them)."""
        options = dict(self.start(person, life))
        for change in self.person_life(person, life):
            for attribute, crm_field in MAPPING:
                if attribute in change.shown:
                    options[crm_field] = options[crm_field] | {change.shown[attribute]}
        return options

    @staticmethod
    def person_life(person: Person, life: int) -> list[Change]:
        return [c for c in person.life_changes(life) if c.kind != DELETED]

    def expected(self, person: Person) -> Expected:
        if person.unsynced is not None:
            return Expected(
                person.user_id,
                DEACTIVATED,  # no contact; were there one, it would hold nothing of it
                allowed=_none(),
                required=False,
                ending="alive" if person.alive else "deleted",
                story=f"never synced ({person.unsynced})",
                synced=False,
            )
        if person.linked_into is not None:
            return Expected(
                person.user_id,
                DEACTIVATED,
                allowed=self.end(person, person.life),
                required=False,
                ending="linked",
                story=f"linked into {person.linked_into}",
            )
        if not person.alive:
            story = "deleted" + (f" (life {person.life})" if person.life > 1 else "")
            successor = self.taken_over_by.get(person.user_id)
            return Expected(
                person.user_id,
                DEACTIVATED,
                allowed=self.end(person, person.life),
                required=person.claims is not None,
                taken_over=successor,
                preexisting=None if successor else person.claims,
                ending="deleted",
                story=f"deleted, re-signed up as {successor}" if successor else story,
            )
        upserts = self.person_life(person, person.life)
        last = upserts[-1]
        start = self.start(person, person.life)
        exact: dict[str, Value] = {}
        allowed: dict[str, Options] = {}
        for attribute, crm_field in MAPPING:
            if attribute in last.shown:
                # The latest event always applies (or finds its values already there).
                exact[crm_field] = last.shown[attribute]
                continue
            options = start[crm_field] | {
                c.shown[attribute] for c in upserts if attribute in c.shown
            }
            if len(options) == 1:
                exact[crm_field] = next(iter(options))
            else:
                allowed[crm_field] = options
        story = "alive" if person.life == 1 else f"re-signed up (life {person.life})"
        if person.reclaims is not None:
            story = f"re-signed up under a new id, taking over {person.reclaims}'s contact"
        if person.blocked:
            story += ", blocked"
        return Expected(
            person.user_id,
            ACTIVE,
            fields=exact,
            allowed=allowed,
            preexisting=person.claims,
            story=story,
            blocked=person.blocked,
        )

    def shows_nothing_new(self, person: Person, change: Change) -> bool:
        """Whether every value the event shows may already be on the contact when it comes,
        from the contact's start or another event of the same life (a newer one too: an
        older event finding its values already there has nothing to write): a fair
        `unchanged`."""
        there = self.start(person, change.life)
        for other in self.person_life(person, change.life):
            if other is change:
                continue
            for attribute, crm_field in MAPPING:
                if attribute in other.shown:
                    there[crm_field] = there[crm_field] | {other.shown[attribute]}
        return all(
            change.shown[attribute] in there[crm_field]
            for attribute, crm_field in MAPPING
            if attribute in change.shown
        )


def expected_state(
    people: Mapping[str, Person], preexisting: Sequence[Preexisting] = ()
) -> dict[str, Expected]:
    """What the CRM must hold for every identity of the model, once its stream is applied."""
    rules = _Rules(people, preexisting)
    return {user_id: rules.expected(person) for user_id, person in people.items()}


def justified_skips(
    people: Mapping[str, Person],
    preexisting: Sequence[Preexisting] = (),
    copies: Mapping[str, int] | None = None,
    special: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, frozenset[str]]:
    """For each event id, the skip reasons the truth justifies (any other skip loses it).

    `copies` counts each event id in the delivered stream; `special` gives the reasons for
    events outside the model (the test event, an unknown type; none for a malformed one).
    """
    rules = _Rules(people, preexisting)
    copies = copies or {}
    justified: dict[str, frozenset[str]] = dict(special or {})
    for person in people.values():
        for change in person.changes:
            reasons: set[str] = set()
            if copies.get(change.event_id, 1) > 1:
                reasons.add(SkipReason.DUPLICATE)
            if any(other.key > change.key for other in person.changes):
                reasons.add(SkipReason.STALE)
            if any(
                other.kind == DELETED and other.key >= change.key and other is not change
                for other in person.changes
            ):
                reasons.add(SkipReason.DELETED)
            if change.kind == DELETED:
                reasons.add(SkipReason.CONTACT_MISSING)
            elif rules.shows_nothing_new(person, change):
                reasons.add(SkipReason.UNCHANGED)
            if person.linked_into is not None or (
                person.unlinked_from is not None and change.life <= person.linked_life
            ):
                reasons.add(SkipReason.ACCOUNT_LINKED)
            if person.unsynced is not None:
                reasons.add(person.unsynced)
            justified[change.event_id] = frozenset(str(r) for r in reasons)
    return justified


@dataclass(frozen=True)
class Mismatch:
    """One way the CRM differs from the truth."""

    kind: str  # see KINDS
    subject: str  # the Auth0 user id, or the contact id for contacts nobody owns
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


KINDS = {
    "missing": "no contact",
    "duplicate": "several contacts for one user",
    "wrong_field": "wrong field",
    "stale_field": "stale field (an older value)",
    "extra_field": "extra field (removed or never set in Auth0)",
    "foreign_data": "another user's data",
    "wrong_status": "wrong status",
    "deleted_active": "active contact of a deleted user",
    "not_linked": "contact from before not linked to its user",
    "taken_over": "contact not taken over by the re-signup",
    "unowned_changed": "contact nobody owns was changed",
    "unowned_new": "new contact with no owner",
    "unknown_owner": "contact of a user Auth0 does not have",
}


@dataclass
class Truth:
    """The expected CRM of a stream, with what is needed to judge every contact and event."""

    users: dict[str, Expected]
    preexisting: Sequence[Preexisting] = ()
    justified: dict[str, frozenset[str]] = field(default_factory=dict)
    # Every value any identity's events showed, per CRM field: to name another user's data.
    owners_of: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        people: Mapping[str, Person],
        preexisting: Sequence[Preexisting] = (),
        copies: Mapping[str, int] | None = None,
        special: Mapping[str, frozenset[str]] | None = None,
    ) -> Truth:
        owners: dict[str, dict[str, set[str]]] = {name: defaultdict(set) for name in CRM_FIELDS}
        for person in people.values():
            for change in person.changes:
                for attribute, crm_field in MAPPING:
                    value = change.shown.get(attribute)
                    if value is not None:
                        owners[crm_field][value].add(person.user_id)
        return cls(
            users=expected_state(people, preexisting),
            preexisting=preexisting,
            justified=justified_skips(people, preexisting, copies, special),
            owners_of=owners,
        )

    def counts(self) -> Counter[str]:
        """Identities by how they end: alive, deleted, or linked into another account."""
        return Counter(expected.ending for expected in self.users.values())


def reconcile(
    truth: Truth,
    contacts: Iterable[Mapping[str, Any]],
    fields: Collection[str] = CRM_FIELDS,
    stored: Callable[[str, Value], Value] | None = None,
) -> list[Mismatch]:
    """Every difference between the truth and the CRM, both ways: every identity against
    the contacts carrying its id, and every contact against the identity it carries (or,
    with none, against what it was before the stream). Empty: in step. `fields`: the CRM
    fields the destination holds (a vendor without a `name` is not held to one);
    `stored(field, value)`: the value the destination keeps when given one (HubSpot
    stores emails in lower case), applied to every expected value."""
    if set(fields) != set(CRM_FIELDS) or stored is not None:
        keep = stored or (lambda _name, value: value)
        truth = replace(
            truth,
            users={
                user_id: replace(
                    expected,
                    fields={k: keep(k, v) for k, v in expected.fields.items() if k in fields},
                    allowed={
                        k: frozenset(keep(k, v) for v in options)
                        for k, options in expected.allowed.items()
                        if k in fields
                    },
                )
                for user_id, expected in truth.users.items()
            },
            preexisting=[
                Preexisting({k: keep(k, v) for k, v in item.fields.items()}, item.contact_id)
                for item in truth.preexisting
            ],
        )
    seeded = {item.contact_id: index for index, item in enumerate(truth.preexisting)}
    if None in seeded:
        raise ValueError("seed the pre-existing contacts first (SampleStream.seed_preexisting)")
    claimed = {e.preexisting for e in truth.users.values() if e.preexisting is not None}
    by_owner: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    problems: list[Mismatch] = []
    for contact in contacts:
        owner = contact.get("auth0_user_id")
        if owner:
            by_owner[str(owner)].append(contact)
            if owner not in truth.users:
                problems.append(
                    Mismatch(
                        "unknown_owner",
                        str(contact.get("id")),
                        f"carries {owner}, a user the stream never had",
                    )
                )
            continue
        index = seeded.get(contact.get("id"))
        if index is None:
            problems.append(
                Mismatch(
                    "unowned_new",
                    str(contact.get("id")),
                    "no auth0_user_id, and it was not in the CRM before the stream",
                )
            )
        elif index not in claimed:
            problems.extend(_untouched(contact, truth.preexisting[index].fields, fields))
    for user_id, expected in truth.users.items():
        problems.extend(_check_user(truth, expected, by_owner.get(user_id, [])))
    return problems


def _untouched(
    contact: Mapping[str, Any], seed: Mapping[str, Any], fields: Collection[str]
) -> Iterator[Mismatch]:
    for name in (*fields, "status"):
        was = seed.get(name, ACTIVE if name == "status" else None)
        if contact.get(name) != was:
            yield Mismatch(
                "unowned_changed",
                str(contact.get("id")),
                f"no Auth0 user claims it, yet {name} is {contact.get(name)!r} (was {was!r})",
            )


def _check_user(
    truth: Truth, expected: Expected, found: list[Mapping[str, Any]]
) -> Iterator[Mismatch]:
    user = expected.user_id
    ids = [str(c.get("id")) for c in found]
    if expected.taken_over is not None:
        for contact_id in ids:
            yield Mismatch(
                "taken_over",
                user,
                f"{contact_id} still carries this deleted user's id: its re-signup "
                f"{expected.taken_over} (same email) should have taken it over",
            )
        return
    if expected.preexisting is not None:
        item = truth.preexisting[expected.preexisting]
        if item.contact_id not in ids:
            yield Mismatch(
                "not_linked",
                user,
                f"the contact from before with its email ({item.contact_id}) is not its "
                f"contact ({expected.story})",
            )
    if len(found) > 1:
        yield Mismatch("duplicate", user, f"{len(found)} contacts carry this id: {ids}")
    if not found and expected.preexisting is None and expected.required:
        yield Mismatch("missing", user, f"no contact ({expected.story})")
    if expected.status == ACTIVE:
        for contact in found:
            yield from _check_active(truth, expected, contact)
        return
    for contact in found:
        if contact.get("status") != DEACTIVATED:
            yield Mismatch(
                "deleted_active",
                user,
                f"{contact.get('id')} is {contact.get('status')!r}, but the user is "
                f"{expected.story} in Auth0",
            )
        for name, options in expected.allowed.items():
            value = contact.get(name)
            if value not in options:
                yield _field_problem(truth, expected, contact, name, value, options)


def _check_active(
    truth: Truth, expected: Expected, contact: Mapping[str, Any]
) -> Iterator[Mismatch]:
    user = expected.user_id
    status = DEACTIVATED if expected.blocked else ACTIVE
    if contact.get("status") != status:
        yield Mismatch(
            "wrong_status",
            user,
            f"{contact.get('id')} is {contact.get('status')!r}, expected {status!r} "
            f"({expected.story})",
        )
    for name, value in expected.fields.items():
        if contact.get(name) != value:
            yield _field_problem(truth, expected, contact, name, contact.get(name), {value})
    for name, options in expected.allowed.items():
        if contact.get(name) not in options:
            yield _field_problem(truth, expected, contact, name, contact.get(name), options)


def _field_problem(
    truth: Truth,
    expected: Expected,
    contact: Mapping[str, Any],
    name: str,
    value: Any,
    options: Iterable[Value],
) -> Mismatch:
    wanted = sorted(options, key=lambda v: (v is not None, v or ""))
    if wanted == [None]:
        shown = "none (removed or never set)"
    else:
        shown = repr(wanted[0]) if len(wanted) == 1 else "one of " + repr(wanted)
    where = f"{contact.get('id')} {name} is {value!r}"
    owners = truth.owners_of.get(name, {}).get(value, set()) if isinstance(value, str) else set()
    if expected.user_id in owners and expected.status == ACTIVE:
        return Mismatch(
            "stale_field", expected.user_id, f"{where}, an older value; expected {shown}"
        )
    if owners - {expected.user_id}:
        others = ", ".join(sorted(owners - {expected.user_id}))
        return Mismatch(
            "foreign_data", expected.user_id, f"{where}, a value of {others}; expected {shown}"
        )
    if wanted == [None]:
        return Mismatch("extra_field", expected.user_id, f"{where}, expected {shown}")
    return Mismatch("wrong_field", expected.user_id, f"{where}, expected {shown}")


def kinds(problems: Iterable[Mismatch]) -> Counter[str]:
    """Mismatches counted by kind."""
    return Counter(problem.kind for problem in problems)


def lost_events(
    truth: Truth,
    outcomes: Iterable[tuple[str | None, str, str]],
    left_in_dlq: Iterable[str | None] = (),
) -> dict[str, str]:
    """Every event id of the stream that was lost, with why.

    `outcomes` are (event id, status, reason) of every delivery and replay, in order;
    `left_in_dlq` the event ids still in the DLQ. An event is kept when it was applied,
    skipped for a reason the truth justifies, or is still in the DLQ; a skip the truth does
    not justify loses it, whatever else happened to its copies.
    """
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event_id, status, reason in outcomes:
        if event_id:
            seen[event_id].append((status, reason))
    left = {event_id for event_id in left_in_dlq if event_id}
    lost: dict[str, str] = {}
    for event_id, justified in truth.justified.items():
        results = seen.get(event_id, [])
        wrong = [r for s, r in results if s == "skipped" and r not in justified]
        if wrong:
            lost[event_id] = f"skipped as {wrong[0]}, which the truth does not justify"
        elif not results:
            lost[event_id] = "never handled"
        elif event_id not in left and not any(s in ("applied", "skipped") for s, _ in results):
            status, reason = results[-1]
            lost[event_id] = f"{status} ({reason}), and not in the DLQ"
    return lost


def list_contacts(
    base_url: str,
    token: str,
    *,
    page_size: int = 500,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Every contact of a CRM implementing the contract, through its listing (1.1)."""
    http = session or requests.Session()
    contacts: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": page_size}
        if after is not None:
            params["after"] = after
        response = http.get(
            base_url.rstrip("/") + "/contacts",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        response.raise_for_status()
        page: list[dict[str, Any]] = response.json()
        if not page:
            return contacts
        contacts.extend(page)
        after = str(page[-1]["id"])
