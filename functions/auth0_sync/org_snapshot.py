"""The backfill's way in: an organization as the Management API lists it, applied as
its company and exactly its memberships and roles (`OrganizationSync.snapshot`)."""

from __future__ import annotations

from dataclasses import dataclass

from auth0_sync.names import OrgEventType, SkipReason
from auth0_sync.org_base import OrgBase, restart, skipped
from auth0_sync.org_events import OrgEvent
from auth0_sync.org_state import MemberState, OrgState, RoleMark
from auth0_sync.outcome import Outcome


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


class Snapshots(OrgBase):
    """The backfill's part of the organization sync."""

    def snapshot(self, org: OrgSnapshot, lease_seconds: float) -> list[Outcome]:
        """An organization as the Management API lists it (backfill): its company and
        exactly its memberships and roles, as of `org.time`. A live event newer than that
        wins over the snapshot and an older one is stale after it; what is in step costs
        no CRM write. One outcome for the company, one per membership looked at."""
        if self.companies is None:
            event = org.as_event()
            return [skipped(event, SkipReason.ORGANIZATIONS_UNSUPPORTED)]
        outcomes: list[Outcome] = []

        def decide(state: OrgState) -> Outcome:
            event = org.as_event()
            if state.deleted is not None:
                return skipped(event, SkipReason.DELETED)
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
                    restart(member, key, present=False)
                else:
                    member = state.members.setdefault(user_id, MemberState())
                    restart(member, key, present=True)
                    for role_id, name in listed.items():
                        if role_id not in member.roles:  # a newer role event wins
                            member.roles[role_id] = RoleMark(key, name, True)
                outcomes.append(self._sync_member(state, user_id, None))
            return company

        outcomes.insert(0, self._locked(org.org_id, lease_seconds, decide))
        return outcomes
