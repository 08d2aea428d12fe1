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

from functools import partial

from aws_lambda_powertools import Logger

from auth0_sync.destinations.companies import COMPANY_DEACTIVATED
from auth0_sync.names import SERVICE_NAME, OrgEventType, SkipReason
from auth0_sync.org_base import OrgBase, UserLink, UserOf, order_skip, restart, skipped
from auth0_sync.org_events import MEMBER_TYPES, ROLE_TYPES, OrgEvent
from auth0_sync.org_snapshot import OrgSnapshot, Snapshots
from auth0_sync.org_state import MemberState, OrgState, RoleMark
from auth0_sync.org_user_deletes import UserDeletes
from auth0_sync.outcome import Applied, Outcome

__all__ = ["OrgBase", "OrgSnapshot", "OrganizationSync", "UserLink", "UserOf"]

logger = Logger(service=SERVICE_NAME, child=True)


class OrganizationSync(Snapshots, UserDeletes):
    """Applies organization events; `companies` None: a destination without companies.

    The frame: the events and a user's contact appearing. The backfill's snapshot
    (`auth0_sync.org_snapshot`) and a user's delete (`auth0_sync.org_user_deletes`) are
    parts of their own on the shared base (`auth0_sync.org_base`)."""

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
            return skipped(event, SkipReason.ORGANIZATIONS_UNSUPPORTED)
        return self._locked(event.org_id, lease_seconds, lambda s: self._decide(event, s))

    def contact_ready(self, user_id: str, lease_seconds: float) -> int:
        """After any event of a user: apply the memberships waiting for the user's contact.
        One read when none waits; returns how many memberships were written."""
        if self.companies is None:
            return 0
        # The user's own event was applied: it is not dead-lettered for a membership the
        # CRM refuses; that stays pending (and logged) until the next try.
        return self._each_org(
            self.state.pending(user_id),
            lease_seconds,
            partial(self._sync_member, user_id=user_id, event=None),
            refused="a pending membership was refused",
            user_id=user_id,
        )

    # Decisions -------------------------------------------------------------------------

    def _decide(self, event: OrgEvent, state: OrgState) -> Outcome:
        if state.deleted is not None:
            # Organization ids are never reused: all that follows its delete is older.
            if event.event_type == OrgEventType.ORG_DELETED:
                return skipped(event, order_skip(event.order_key, state.deleted) or "duplicate")
            return skipped(event, SkipReason.DELETED)
        if event.event_type == OrgEventType.ORG_DELETED:
            return self._delete(event, state)
        if event.event_type in MEMBER_TYPES:
            return self._membership(event, state)
        if event.event_type in ROLE_TYPES:
            return self._role(event, state)
        return self._upsert(event, state)

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
            return skipped(event, SkipReason.CONTACT_MISSING)
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
        skip = order_skip(event.order_key, member.key)
        if skip is not None:
            return skipped(event, skip)
        restart(member, event.order_key, event.event_type == OrgEventType.MEMBER_ADDED)
        return self._sync_member(state, event.user_id, event)

    def _role(self, event: OrgEvent, state: OrgState) -> Outcome:
        assert event.user_id is not None
        assert event.role_id
        assert event.role_name
        member = state.members.setdefault(event.user_id, MemberState())
        if member.key is not None and event.order_key < member.key:
            return skipped(event, SkipReason.STALE)  # a role of an earlier membership
        mark = member.roles.get(event.role_id)
        skip = order_skip(event.order_key, None if mark is None else mark.key)
        if skip is not None:
            return skipped(event, skip)
        member.roles[event.role_id] = RoleMark(
            event.order_key, event.role_name, event.event_type == OrgEventType.ROLE_ASSIGNED
        )
        return self._sync_member(state, event.user_id, event)
