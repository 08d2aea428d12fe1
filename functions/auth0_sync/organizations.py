"""The organization sync: Auth0 organizations -> CRM companies, members -> memberships.

The rules (docs/sync-rules.md, "Organizations"), stated once here:
- an organization is one company, matched by `auth0_org_id` (found, else created with an
  idempotency key), remembered in the organization's state item;
- every event of one organization runs under that item's lease; an event is applied only
  if it is newer than the last one applied to the same thing (the organization, one
  membership, one role of one membership): a duplicate or a stale event costs no CRM call;
- a membership ends the roles it had: a role event older than the membership's last
  added/deleted belongs to an earlier membership and is stale; a removed role is kept as a
  mark so a late `role.assigned` cannot bring it back;
- a membership whose company or contact does not exist yet is recorded and applied when
  they appear: by the organization's create (its company), or after any event of the
  user (its contact; the user's pending item names the organizations waiting);
- `organization.deleted` deactivates the company and removes the memberships written;
  later-arriving older events of that organization are skipped (`deleted`);
- a user's delete removes the user's memberships (every policy but `none`): each
  organization the user's index names ends the membership at the delete's order key, so a
  later-arriving older `member.added` or role event is stale; a membership older than the
  user's last delete (the user's `life_start`) is of a past life and is never written, in
  whatever organization and order it arrives (`deleted`);
- renaming writes only the company fields that changed; nothing here writes a contact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from aws_lambda_powertools import Logger

from auth0_sync.destinations.companies import (
    COMPANY_ACTIVE,
    COMPANY_DEACTIVATED,
    COMPANY_ORG_ID_FIELD,
    Companies,
    Company,
)
from auth0_sync.errors import AmbiguousMatch, PermanentError, TransientError
from auth0_sync.names import SERVICE_NAME, OrgEventType, SkipReason
from auth0_sync.org_events import MEMBER_TYPES, ROLE_TYPES, OrgEvent
from auth0_sync.org_state import MemberState, OrgState, OrgStateStore, RoleMark
from auth0_sync.outcome import Applied, Outcome

logger = Logger(service=SERVICE_NAME, child=True)


@dataclass(frozen=True)
class UserLink:
    """What the organization sync reads of a user's sync state.

    `contact_id`: the user's contact, None while it does not exist or the user is deleted;
    `life_start`: the order key of the user's last delete, also a late one (memberships
    older than it are of a past life)."""

    contact_id: str | None = None
    life_start: str | None = None


@dataclass(frozen=True)
class OrgSnapshot:
    """An organization and its members with their roles (role id -> name) as listed by
    the Management API at `time` (fixed-width ISO UTC); `snapshot_id` names the listing."""

    org_id: str
    name: str | None
    display_name: str | None
    members: dict[str, dict[str, str]]
    time: str
    snapshot_id: str

    def as_event(self) -> OrgEvent:
        """The company part, as the `organization.updated` it stands for."""
        return OrgEvent(
            event_id=f"{self.snapshot_id}-{self.org_id}",
            event_type=OrgEventType.ORG_UPDATED,
            org_id=self.org_id,
            time=self.time,
            name=self.name,
            display_name=self.display_name,
        )


# The user's sync state as the organization sync needs it (one read).
UserOf = Callable[[str], UserLink]


def _skip(event: OrgEvent, reason: str) -> Outcome:
    return Outcome("skipped", reason, event.event_id, event.event_type, event.user_id)


def _order_skip(event_key: str, last_key: str | None) -> SkipReason | None:
    if last_key is None or event_key > last_key:
        return None
    return SkipReason.DUPLICATE if event_key == last_key else SkipReason.STALE


class OrganizationSync:
    """Applies organization events; `companies` None: a destination without companies."""

    def __init__(
        self,
        companies: Companies | None,
        state: OrgStateStore,
        user_of: UserOf,
        destination: str,
        *,
        remove_on_user_delete: bool = True,
    ) -> None:
        self.companies = companies
        self.state = state
        self.user_of = user_of
        self.destination = destination
        # False with DELETE_POLICY=none: a user's delete makes no CRM call at all.
        self.remove_on_user_delete = remove_on_user_delete
        self._warned = False

    # Entry points ----------------------------------------------------------------------

    def apply(self, event: OrgEvent, lease_seconds: float) -> Outcome:
        """Apply one organization event; raises Transient/PermanentError like the user core."""
        if self.companies is None:
            if not self._warned:  # one line per cold start, naming the destination
                logger.warning(
                    f"organization events are skipped: the {self.destination} destination's "
                    "adapter has no companies support (README, Organizations)"
                )
                self._warned = True
            return _skip(event, SkipReason.ORGANIZATIONS_UNSUPPORTED)
        return self._locked(event.org_id, lease_seconds, lambda s: self._decide(event, s))

    def contact_ready(self, user_id: str, lease_seconds: float) -> int:
        """After any event of a user: apply the memberships waiting for the user's contact.
        One read when none waits; returns how many memberships were written."""
        if self.companies is None:
            return 0
        written = 0
        for org_id in sorted(self.state.pending(user_id)):
            try:
                outcome = self._locked(
                    org_id, lease_seconds, partial(self._sync_member, user_id=user_id, event=None)
                )
            except PermanentError as exc:
                # The user's own event was applied: it is not dead-lettered for a membership
                # the CRM refuses; that stays pending (and logged) until the next try.
                logger.warning(
                    "a pending membership was refused",
                    extra={"org_id": org_id, "user_id": user_id, "reason": exc.reason},
                )
                continue
            written += outcome.status == "applied"
        return written

    def user_deleted(self, user_id: str, lease_seconds: float) -> int:
        """After a user's delete (each delivery of it): remove the user's memberships.

        Driven by the user's state, not the event: the memberships that began before the
        user's last delete end (a delete held by the brake left no mark: nothing ends; a
        late delete, older than the user's newest event, ends the past life's). Idempotent:
        a rerun finds nothing older left. Returns how many memberships were removed."""
        if self.companies is None or not self.remove_on_user_delete:
            return 0
        user = self.user_of(user_id)
        if user.life_start is None:
            return 0
        removed = 0
        for org_id in sorted(self.state.orgs_of(user_id)):
            try:
                outcome = self._locked(
                    org_id,
                    lease_seconds,
                    partial(self._user_gone, user_id=user_id),
                )
            except PermanentError as exc:
                # The user's delete was applied: it is not dead-lettered for a membership
                # the CRM refuses to remove; logged, and tried again on the next delivery.
                logger.warning(
                    "a membership of a deleted user was not removed",
                    extra={"org_id": org_id, "user_id": user_id, "reason": exc.reason},
                )
                continue
            removed += outcome.status == "applied"
        return removed

    def snapshot(self, org: OrgSnapshot, lease_seconds: float) -> list[Outcome]:
        """An organization as the Management API lists it (backfill): its company and
        exactly its memberships and roles, as of `org.time`. A live event newer than that
        wins over the snapshot and an older one is stale after it; what is in step costs
        no CRM write. One outcome for the company, one per membership looked at."""
        if self.companies is None:
            event = org.as_event()
            return [_skip(event, SkipReason.ORGANIZATIONS_UNSUPPORTED)]
        outcomes: list[Outcome] = []

        def decide(state: OrgState) -> Outcome:
            event = org.as_event()
            if state.deleted is not None:
                return _skip(event, SkipReason.DELETED)
            company = self._upsert(event, state)
            key = event.order_key
            for user_id in sorted(set(org.members) | set(state.members)):
                member = state.members.get(user_id)
                listed = org.members.get(user_id)
                if member is not None and member.key is not None and member.key >= key:
                    continue  # a newer membership event was applied: it wins
                if listed is None:
                    if member is None or not member.present:
                        continue
                    _restart(member, key, present=False)
                else:
                    member = state.members.setdefault(user_id, MemberState())
                    _restart(member, key, present=True)
                    for role_id, name in listed.items():
                        if role_id not in member.roles:  # a newer role event wins
                            member.roles[role_id] = RoleMark(key, name, True)
                outcomes.append(self._sync_member(state, user_id, None))
            return company

        outcomes.insert(0, self._locked(org.org_id, lease_seconds, decide))
        return outcomes

    def _locked(
        self, org_id: str, lease_seconds: float, decide: Callable[[OrgState], Outcome]
    ) -> Outcome:
        owner = f"{uuid.uuid4().hex[:12]}"
        state = self.state.acquire(org_id, owner, lease_seconds)
        try:
            outcome = decide(state)
        except BaseException:
            self.state.release(org_id, owner)
            raise
        self.state.commit(state, owner)
        return outcome

    # Decisions -------------------------------------------------------------------------

    def _decide(self, event: OrgEvent, state: OrgState) -> Outcome:
        if state.deleted is not None:
            # Organization ids are never reused: all that follows its delete is older.
            if event.event_type == OrgEventType.ORG_DELETED:
                return _skip(event, _order_skip(event.order_key, state.deleted) or "duplicate")
            return _skip(event, SkipReason.DELETED)
        if event.event_type == OrgEventType.ORG_DELETED:
            return self._delete(event, state)
        if event.event_type in MEMBER_TYPES:
            return self._membership(event, state)
        if event.event_type in ROLE_TYPES:
            return self._role(event, state)
        return self._upsert(event, state)

    def _upsert(self, event: OrgEvent, state: OrgState) -> Outcome:
        skip = _order_skip(event.order_key, state.key)
        if skip is not None:
            return _skip(event, skip)
        state.key = event.order_key
        assert self.companies is not None
        desired: dict[str, str | None] = {"display_name": event.display_name}
        if event.name is not None:
            desired["name"] = event.name
        applied: Applied | None
        if state.company_id is None:
            company = self._find(state.org_id)
            if company is None:
                fields = {
                    COMPANY_ORG_ID_FIELD: state.org_id,
                    "name": event.name or state.org_id,  # the contract requires a name
                    **({"display_name": event.display_name} if event.display_name else {}),
                    "status": COMPANY_ACTIVE,
                    "source_updated_at": event.time,
                }
                created = self.companies.create_company(fields, f"auth0-sync-org-{state.org_id}")
                state.company_id = str(created["id"])
                state.written = {"name": fields["name"], "display_name": event.display_name}
                applied = Applied.COMPANY_CREATED
            else:
                state.company_id = str(company["id"])
                state.written = {k: company.get(k) for k in ("name", "display_name")}
                applied = self._rename(event, state, desired)
        else:
            applied = self._rename(event, state, desired)
        self._apply_waiting(state)
        if applied is None:
            return _skip(event, SkipReason.UNCHANGED)
        return Outcome("applied", applied, event.event_id, event.event_type, None, state.company_id)

    def _rename(
        self, event: OrgEvent, state: OrgState, desired: dict[str, str | None]
    ) -> Applied | None:
        """Write only the company fields that differ from what was last written."""
        assert self.companies is not None
        assert state.company_id is not None
        changes = {k: v for k, v in desired.items() if state.written.get(k) != v}
        if not changes:
            return None
        if (
            self.companies.update_company(
                state.company_id, {**changes, "source_updated_at": event.time}
            )
            is None
        ):
            raise TransientError(
                f"company {state.company_id} of organization {state.org_id} is gone from the "
                "CRM; it is looked up again on the retry",
                "crm_404",
            )
        state.written.update(changes)
        return Applied.COMPANY_UPDATED

    def _delete(self, event: OrgEvent, state: OrgState) -> Outcome:
        assert self.companies is not None
        if state.company_id is None:
            company = self._find(state.org_id)
            state.company_id = None if company is None else str(company["id"])
        if state.company_id is not None:
            for member in state.members.values():
                if member.written is not None and member.contact_id is not None:
                    self.companies.delete_membership(state.company_id, member.contact_id)
            self.companies.update_company(
                state.company_id, {"status": COMPANY_DEACTIVATED, "source_updated_at": event.time}
            )
        for user_id, member in state.members.items():
            self._unindex(state, user_id, member)
            self._unindex_member(state, user_id, member)
        state.members = {}
        state.deleted = event.order_key
        if state.company_id is None:
            return _skip(event, SkipReason.CONTACT_MISSING)
        return Outcome(
            "applied",
            Applied.COMPANY_DEACTIVATED,
            event.event_id,
            event.event_type,
            None,
            state.company_id,
        )

    def _membership(self, event: OrgEvent, state: OrgState) -> Outcome:
        assert event.user_id is not None
        member = state.members.setdefault(event.user_id, MemberState())
        skip = _order_skip(event.order_key, member.key)
        if skip is not None:
            return _skip(event, skip)
        _restart(member, event.order_key, event.event_type == OrgEventType.MEMBER_ADDED)
        return self._sync_member(state, event.user_id, event)

    def _user_gone(self, state: OrgState, user_id: str) -> Outcome:
        """The user was deleted: `_sync_member` ends a membership older than the delete."""
        member = state.members.get(user_id)
        if member is None or state.deleted is not None:
            # Nothing of the user here (any more): the index was out of date.
            self.state.drop_pending(user_id, state.org_id)
            self.state.drop_member(user_id, state.org_id)
            return Outcome("skipped", SkipReason.UNCHANGED, None, None, user_id, state.company_id)
        return self._sync_member(state, user_id, None)

    def _role(self, event: OrgEvent, state: OrgState) -> Outcome:
        assert event.user_id is not None
        assert event.role_id
        assert event.role_name
        member = state.members.setdefault(event.user_id, MemberState())
        if member.key is not None and event.order_key < member.key:
            return _skip(event, SkipReason.STALE)  # a role of an earlier membership
        mark = member.roles.get(event.role_id)
        skip = _order_skip(event.order_key, None if mark is None else mark.key)
        if skip is not None:
            return _skip(event, skip)
        member.roles[event.role_id] = RoleMark(
            event.order_key, event.role_name, event.event_type == OrgEventType.ROLE_ASSIGNED
        )
        return self._sync_member(state, event.user_id, event)

    def _sync_member(self, state: OrgState, user_id: str, event: OrgEvent | None) -> Outcome:
        """Make the CRM's membership what the state says, if it can be written yet."""
        assert self.companies is not None

        def outcome(status: str, reason: str) -> Outcome:
            return Outcome(
                "applied" if status == "applied" else "skipped",
                reason,
                event.event_id if event else None,
                event.event_type if event else None,
                user_id,
                state.company_id,
            )

        def remove(nothing_written: str) -> Outcome:
            assert member is not None
            assert self.companies is not None
            self._unindex(state, user_id, member)
            if member.written is None or member.contact_id is None or state.company_id is None:
                member.written = None
                self._unindex_member(state, user_id, member)
                return outcome("skipped", nothing_written)
            self.companies.delete_membership(state.company_id, member.contact_id)
            member.written, member.contact_id = None, None
            self._unindex_member(state, user_id, member)
            return outcome("applied", Applied.MEMBERSHIP_REMOVED)

        member = state.members.get(user_id)
        if member is None or state.deleted is not None:
            return outcome("skipped", SkipReason.DELETED)
        if not member.present:
            return remove(SkipReason.UNCHANGED)
        if state.company_id is None:
            return outcome("skipped", SkipReason.MEMBERSHIP_PENDING)  # the create applies it
        if not member.member_indexed:
            # Name the organization in the user's index before looking at the user: the
            # user's delete commits its tombstone, then reads the index (one sees the other).
            self.state.add_member(user_id, state.org_id)
            member.member_indexed = True
        user = self.user_of(user_id)
        if user.life_start is not None and member.key is not None and member.key < user.life_start:
            # Added before the user's last delete: a membership of a past life.
            _restart(member, user.life_start, present=False)
            return remove(SkipReason.DELETED)
        contact_id = user.contact_id
        if contact_id is None and not member.indexed:
            # Write the index, then look again: the user's event commits its contact, then
            # reads the index, so one of the two always sees the other.
            self.state.add_pending(user_id, state.org_id)
            member.indexed = True
            contact_id = self.user_of(user_id).contact_id
        if contact_id is None:
            return outcome("skipped", SkipReason.MEMBERSHIP_PENDING)
        roles = member.role_names()
        if member.written == roles and member.contact_id == contact_id:
            self._unindex(state, user_id, member)
            return outcome("skipped", SkipReason.UNCHANGED)
        if not self.companies.put_membership(state.company_id, contact_id, roles):
            raise TransientError(
                f"crm PUT membership of organization {state.org_id}: the company or the "
                "contact is gone (404); looked up again on the retry",
                "crm_404",
            )
        member.written, member.contact_id = roles, contact_id
        self._unindex(state, user_id, member)
        return outcome("applied", Applied.MEMBERSHIP_SET)

    def _apply_waiting(self, state: OrgState) -> None:
        """The company exists now: write the memberships that waited for it."""
        for user_id, member in state.members.items():
            if member.present and member.written is None:
                self._sync_member(state, user_id, None)

    def _unindex(self, state: OrgState, user_id: str, member: MemberState) -> None:
        if member.indexed:
            self.state.drop_pending(user_id, state.org_id)
            member.indexed = False

    def _unindex_member(self, state: OrgState, user_id: str, member: MemberState) -> None:
        if member.member_indexed:
            self.state.drop_member(user_id, state.org_id)
            member.member_indexed = False

    def _find(self, org_id: str) -> Company | None:
        assert self.companies is not None
        found = self.companies.find_companies(org_id)
        if len(found) > 1:
            ids = ", ".join(sorted(str(c.get("id")) for c in found))
            raise AmbiguousMatch(f"companies {ids} all have auth0_org_id {org_id}: none chosen")
        return found[0] if found else None


def _restart(member: MemberState, key: str, present: bool) -> None:
    """A membership starts or ends at `key`: that ends the roles of the one before it."""
    member.key = key
    member.present = present
    member.roles = {r: m for r, m in member.roles.items() if m.key > key}
