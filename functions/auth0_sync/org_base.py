"""What every part of the organization sync shares: the adapters, the organization's
lease, the company's upsert and the write of one membership as the state says it.

`OrganizationSync` (`auth0_sync.organizations`) keeps the frame: it applies the events and
states the rules; each other way in is its own part, built on this base under the same
rules of order and ownership: `auth0_sync.org_snapshot` (the backfill's listing of an
organization), `auth0_sync.org_user_deletes` (a user's delete ends the user's memberships).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from auth0_sync.destinations.companies import (
    COMPANY_ACTIVE,
    COMPANY_ORG_ID_FIELD,
    Companies,
    Company,
)
from auth0_sync.errors import AmbiguousMatch, PermanentError, TransientError
from auth0_sync.names import SERVICE_NAME, SkipReason
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemberState, OrgState, OrgStateStore
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


# The user's sync state as the organization sync needs it (one read).
UserOf = Callable[[str], UserLink]


def skipped(event: OrgEvent, reason: str) -> Outcome:
    return Outcome("skipped", reason, event.event_id, event.event_type, event.user_id)


def order_skip(event_key: str, last_key: str | None) -> SkipReason | None:
    if last_key is None or event_key > last_key:
        return None
    return SkipReason.DUPLICATE if event_key == last_key else SkipReason.STALE


def restart(member: MemberState, key: str, present: bool) -> None:
    """A membership starts or ends at `key`: that ends the roles of the one before it."""
    member.key = key
    member.present = present
    member.roles = {r: m for r, m in member.roles.items() if m.key > key}


class OrgBase:
    """The shared parts; `companies` None: a destination without companies."""

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

    def _each_org(
        self,
        org_ids: Iterable[str],
        lease_seconds: float,
        decide: Callable[[OrgState], Outcome],
        *,
        refused: str,
        user_id: str,
    ) -> int:
        """Run `decide` on each organization (in order) under its lease; returns how many
        applied. A write the CRM refuses is logged as `refused` and left for the next try:
        the user's event that led here was applied."""
        applied = 0
        for org_id in sorted(org_ids):
            try:
                outcome = self._locked(org_id, lease_seconds, decide)
            except PermanentError as exc:
                logger.warning(
                    refused, extra={"org_id": org_id, "user_id": user_id, "reason": exc.reason}
                )
                continue
            applied += outcome.status == "applied"
        return applied

    def _upsert(self, event: OrgEvent, state: OrgState) -> Outcome:
        skip = order_skip(event.order_key, state.key)
        if skip is not None:
            return skipped(event, skip)
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
            return skipped(event, SkipReason.UNCHANGED)
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
            restart(member, user.life_start, present=False)
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
