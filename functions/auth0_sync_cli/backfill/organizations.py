"""`auth0-sync backfill --organizations`: every Auth0 organization, its members and their
roles, through the organization sync's snapshot rule (`OrganizationSync.snapshot`).

The Management API lists them with checkpoint paging (`GET /api/v2/organizations` and
`GET /api/v2/organizations/{id}/members?fields=user_id,roles`, `take` and `from`, the next
page's `from` is the answer's `next`; https://auth0.com/docs/api/management/v2/
organizations/get-organizations and .../get-organization-members). Each organization is
one snapshot as of the time the backfill began: a live event newer than that wins, an
older one is stale after it, and what is in step costs no CRM write.

Resume: the checkpoint (`<--checkpoint>.orgs.json`) keeps the snapshot's time and id and
the organizations done; a rerun with it lists again and skips those. A dry run writes
nothing: the CRM's writes are counted, not sent, and the state is read, never written.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from auth0_sync.destinations.companies import Companies, Company
from auth0_sync.errors import ManagementApiError
from auth0_sync.events import iso
from auth0_sync.org_state import OrgState, OrgStateStore
from auth0_sync.organizations import OrganizationSync, OrgSnapshot
from auth0_sync.streams.client import API_PREFIX, ManagementClient, _seg

READ_ORGANIZATIONS = "read:organizations"
READ_MEMBERS = "read:organization_members"
PAGE_SIZE = 100  # the most `take` allows
MAX_PAGES = 100_000
SNAPSHOT_PREFIX = "backfill-org"


class OrganizationsClient(ManagementClient):
    """The organization listings, on the event-stream client's token, retries and errors."""

    page_size = PAGE_SIZE

    def _pages(
        self, path: str, scope: str, name: str, params: Mapping[str, str]
    ) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            query = {**params, "take": str(self.page_size), **({"from": cursor} if cursor else {})}
            data = self._json("GET", path, scope=scope, params=query)
            page = data.get(name) if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ManagementApiError(
                    f"GET {API_PREFIX}{path}", f'unexpected answer: expected {{"{name}": [...]}}'
                )
            yield from (item for item in page if isinstance(item, dict))
            cursor = data.get("next")
            if not cursor or not page:
                return

    def organizations(self) -> Iterator[dict[str, Any]]:
        return self._pages("/organizations", READ_ORGANIZATIONS, "organizations", {})

    def members(self, org_id: str) -> dict[str, dict[str, str]]:
        """user id -> {role id: role name} (roles need read:organization_member_roles)."""
        path = f"/organizations/{_seg(org_id)}/members"
        members: dict[str, dict[str, str]] = {}
        for member in self._pages(path, READ_MEMBERS, "members", {"fields": "user_id,roles"}):
            user_id = member.get("user_id")
            if not isinstance(user_id, str) or not user_id:
                raise ManagementApiError(f"GET {API_PREFIX}{path}", "a member has no user_id")
            roles = member.get("roles") or []
            members[user_id] = {
                str(r["id"]): str(r.get("name") or r["id"])
                for r in roles
                if isinstance(r, dict) and r.get("id")
            }
        return members


class OrgLister(Protocol):
    """What the backfill reads of the tenant (the client above)."""

    def organizations(self) -> Iterator[dict[str, Any]]: ...
    def members(self, org_id: str) -> dict[str, dict[str, str]]: ...


@dataclass
class OrgCheckpoint:
    """The snapshot's time and id, and the organizations done (None path: not kept)."""

    path: str | None
    time: str
    snapshot_id: str
    done: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, path: str | None, now: Callable[[], datetime]) -> OrgCheckpoint:
        if path is not None and os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            return cls(path, str(data["time"]), str(data["snapshot_id"]), set(data["done"]))
        return cls(path, iso(now()), f"{SNAPSHOT_PREFIX}-{uuid.uuid4().hex[:12]}")

    def finished(self, org_id: str) -> None:
        self.done.add(org_id)
        if self.path is None:
            return
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(
                {"time": self.time, "snapshot_id": self.snapshot_id, "done": sorted(self.done)},
                handle,
            )
        os.replace(temporary, self.path)


def checkpoint_path(users_checkpoint: str | None) -> str | None:
    return None if users_checkpoint is None else f"{users_checkpoint}.orgs.json"


@dataclass
class PlannedCompanies:
    """`--dry-run`: reads go to the CRM, writes are counted and answered as if made."""

    inner: Companies
    writes: Counter[str] = field(default_factory=Counter)

    def find_companies(self, auth0_org_id: str) -> list[Company]:
        return self.inner.find_companies(auth0_org_id)

    def create_company(self, fields: Mapping[str, Any], idempotency_key: str) -> Company:
        self.writes["create_company"] += 1
        return {**fields, "id": f"planned-{idempotency_key}"}

    def update_company(self, company_id: str, fields: Mapping[str, Any]) -> Company | None:
        self.writes["update_company"] += 1
        return {**fields, "id": company_id}

    def put_membership(self, company_id: str, contact_id: str, roles: Sequence[str]) -> bool:  # noqa: ARG002
        self.writes["put_membership"] += 1
        return True

    def delete_membership(self, company_id: str, contact_id: str) -> None:  # noqa: ARG002
        self.writes["delete_membership"] += 1


@dataclass
class ReadOnlyOrgState:
    """`--dry-run`: the organizations' state as it stands, never written (no lease)."""

    inner: OrgStateStore

    def acquire(self, org_id: str, owner: str, lease_seconds: float) -> OrgState:  # noqa: ARG002
        return self.inner.peek(org_id)

    def commit(self, state: OrgState, owner: str) -> None:
        pass

    def release(self, org_id: str, owner: str) -> None:
        pass

    def add_pending(self, user_id: str, org_id: str) -> None:
        pass

    def drop_pending(self, user_id: str, org_id: str) -> None:
        pass

    def pending(self, user_id: str) -> set[str]:
        return self.inner.pending(user_id)

    def add_member(self, user_id: str, org_id: str) -> None:
        pass

    def drop_member(self, user_id: str, org_id: str) -> None:
        pass

    def orgs_of(self, user_id: str) -> set[str]:
        return self.inner.orgs_of(user_id)

    def peek(self, org_id: str) -> OrgState:
        return self.inner.peek(org_id)


@dataclass
class OrgBackfillReport:
    organizations: int = 0
    members: int = 0
    resumed: int = 0  # done by an earlier run (the checkpoint)
    outcomes: Counter[str] = field(default_factory=Counter)  # "applied:membership_set"...
    planned_writes: Counter[str] = field(default_factory=Counter)  # dry run only

    def to_dict(self) -> dict[str, Any]:
        return {
            "organizations": self.organizations,
            "members": self.members,
            "resumed": self.resumed,
            "outcomes": dict(sorted(self.outcomes.items())),
            **({"planned_writes": dict(self.planned_writes)} if self.planned_writes else {}),
        }

    def render(self) -> str:
        lines = [
            f"organizations: {self.organizations} listed ({self.resumed} done before), "
            f"{self.members} members"
        ]
        lines += [f"  {name}: {count}" for name, count in sorted(self.outcomes.items())]
        if self.planned_writes:
            lines.append(
                "  would write: "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.planned_writes.items()))
            )
        return "\n".join(lines)


def backfill_organizations(
    lister: OrgLister,
    sync: OrganizationSync,
    checkpoint: OrgCheckpoint,
    *,
    lease_seconds: float = 30.0,
    planned: PlannedCompanies | None = None,
) -> OrgBackfillReport:
    """Each listed organization as one snapshot; the checkpoint moves after each."""
    report = OrgBackfillReport()
    for org in lister.organizations():
        org_id = str(org.get("id") or "")
        if not org_id:
            raise ManagementApiError(f"GET {API_PREFIX}/organizations", "an organization has no id")
        report.organizations += 1
        if org_id in checkpoint.done:
            report.resumed += 1
            continue
        members = lister.members(org_id)
        report.members += len(members)
        snapshot = OrgSnapshot(
            org_id=org_id,
            name=org.get("name"),
            display_name=org.get("display_name"),
            members=members,
            time=checkpoint.time,
            snapshot_id=checkpoint.snapshot_id,
        )
        for outcome in sync.snapshot(snapshot, lease_seconds):
            report.outcomes[f"{outcome.status}:{outcome.reason}"] += 1
        if planned is None:
            checkpoint.finished(org_id)
    if planned is not None:
        report.planned_writes = Counter(planned.writes)
    return report


def utc_now() -> datetime:
    return datetime.now(UTC)
