"""A user's delete ends the user's memberships (`OrganizationSync.user_deleted`)."""

from __future__ import annotations

from functools import partial

from auth0_sync.names import SkipReason
from auth0_sync.org_base import OrgBase
from auth0_sync.org_state import OrgState
from auth0_sync.outcome import Outcome


class UserDeletes(OrgBase):
    """The part of the organization sync that a user's delete drives."""

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
        # The user's delete was applied: it is not dead-lettered for a membership the CRM
        # refuses to remove; logged, and tried again on the next delivery.
        return self._each_org(
            self.state.orgs_of(user_id),
            lease_seconds,
            partial(self._user_gone, user_id=user_id),
            refused="a membership of a deleted user was not removed",
            user_id=user_id,
        )

    def _user_gone(self, state: OrgState, user_id: str) -> Outcome:
        """The user was deleted: `_sync_member` ends a membership older than the delete."""
        member = state.members.get(user_id)
        if member is None or state.deleted is not None:
            # Nothing of the user here (any more): the index was out of date.
            self.state.drop_pending(user_id, state.org_id)
            self.state.drop_member(user_id, state.org_id)
            return Outcome("skipped", SkipReason.UNCHANGED, None, None, user_id, state.company_id)
        return self._sync_member(state, user_id, None)
