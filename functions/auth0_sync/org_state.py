"""Per-organization sync state: what was last applied for one Auth0 organization.

It lives in the users' state table, in items whose keys can never be an Auth0 user id
(those always start with a provider name, e.g. `auth0|...`; ours start with `#`):

- `#org#<org_id>`: the organization's item: its company, the order key of its last
  change, its tombstone, and each membership (the order key of the last added/deleted,
  each role's last assigned/deleted, the roles as last written). Every organization and
  membership event of one organization runs under this item's lease, so two of them
  never interleave; the state is one JSON attribute (`org`): an organization of a few
  thousand members stays far below DynamoDB's 400 KB item limit.
- `#orgpending#<user_id>`: the organizations in which that user has a membership waiting
  for the user's contact (`orgs`), read after every user event (one strongly consistent
  GetItem), and those in which a membership of the user is written or about to be
  (`member_of`), read after the user's delete to remove them. The organization adds itself
  to `member_of` before it looks up the user's contact, and the user's delete commits its
  tombstone before it reads the item: one of the two always sees the other.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from auth0_sync.errors import TransientError
from auth0_sync.names import STATE_TABLE_PK
from auth0_sync.state_dynamo import StateTable, _plain, _state_error, take_lease

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

ORG_KEY_PREFIX = "#org#"
PENDING_KEY_PREFIX = "#orgpending#"


@dataclass
class RoleMark:
    """The last role event applied for one role of one membership."""

    key: str
    name: str
    on: bool


@dataclass
class MemberState:
    """One user's membership of the organization.

    - `key`: the order key of the last `member.added`/`member.deleted` applied;
    - `roles`: per role id, its last event (a removed role is kept as a mark, so a late
      `role.assigned` cannot bring it back);
    - `written`: the role names as last written to the CRM (None: no membership written),
      and `contact_id` the contact it was written for;
    - `indexed`: the user's pending item names this organization (waiting for a contact);
    - `member_indexed`: its `member_of` names this organization (a membership is written or
      about to be: the user's delete finds it there).
    """

    key: str | None = None
    present: bool = False
    roles: dict[str, RoleMark] = field(default_factory=dict)
    written: list[str] | None = None
    contact_id: str | None = None
    indexed: bool = False
    member_indexed: bool = False

    def role_names(self) -> list[str]:
        return sorted({mark.name for mark in self.roles.values() if mark.on})


@dataclass
class OrgState:
    org_id: str
    company_id: str | None = None
    key: str | None = None  # order key of the last organization.created/updated applied
    deleted: str | None = None  # order key of organization.deleted: the tombstone
    written: dict[str, str | None] = field(default_factory=dict)  # company fields as written
    members: dict[str, MemberState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, org_id: str, text: str | None) -> OrgState:
        if not text:
            return cls(org_id)
        data = json.loads(text)
        members = {
            user_id: MemberState(
                key=m.get("key"),
                present=bool(m.get("present")),
                roles={r: RoleMark(**mark) for r, mark in m.get("roles", {}).items()},
                written=m.get("written"),
                contact_id=m.get("contact_id"),
                indexed=bool(m.get("indexed")),
                member_indexed=bool(m.get("member_indexed")),
            )
            for user_id, m in data.get("members", {}).items()
        }
        return cls(
            org_id=org_id,
            company_id=data.get("company_id"),
            key=data.get("key"),
            deleted=data.get("deleted"),
            written=dict(data.get("written", {})),
            members=members,
        )


class OrgStateStore(Protocol):
    """What the organization sync needs from its state (DynamoDB in AWS, memory locally)."""

    def acquire(self, org_id: str, owner: str, lease_seconds: float) -> OrgState: ...
    def commit(self, state: OrgState, owner: str) -> None: ...
    def release(self, org_id: str, owner: str) -> None: ...
    def add_pending(self, user_id: str, org_id: str) -> None: ...
    def drop_pending(self, user_id: str, org_id: str) -> None: ...
    def pending(self, user_id: str) -> set[str]: ...
    def add_member(self, user_id: str, org_id: str) -> None: ...
    def drop_member(self, user_id: str, org_id: str) -> None: ...
    def orgs_of(self, user_id: str) -> set[str]:
        """Every organization the user's item names: pending or written memberships."""
        ...

    def peek(self, org_id: str) -> OrgState:
        """The committed state, read without a lease (a dry run's plan)."""
        ...


def _lease_held(org_id: str) -> TransientError:
    return TransientError(
        f"organization {org_id} is being synced by another invocation", "lease_held"
    )


class DynamoOrgStateStore(StateTable):
    """Organization state in the state table (see the module's docstring for the keys)."""

    @staticmethod
    def _key(prefix: str, name: str) -> dict[str, AttributeValueTypeDef]:
        return {STATE_TABLE_PK: {"S": prefix + name}}

    def acquire(self, org_id: str, owner: str, lease_seconds: float) -> OrgState:
        item = take_lease(
            self.client,
            self._table_name,
            self._key(ORG_KEY_PREFIX, org_id),
            owner,
            lease_seconds,
            held=lambda _until: _lease_held(org_id),
            what="taking the organization's lease",
        )
        text = item.get("org")
        return OrgState.from_json(org_id, text if isinstance(text, str) else None)

    def commit(self, state: OrgState, owner: str) -> None:
        self._write_holding_lease(
            self._key(ORG_KEY_PREFIX, state.org_id),
            "SET org = :org REMOVE lease_owner, lease_until",
            {":org": state.to_json(), ":owner": owner},
            holder=f"organization {state.org_id}",
            what="writing the organization's state",
        )

    def release(self, org_id: str, owner: str) -> None:
        self._drop_lease(self._key(ORG_KEY_PREFIX, org_id), owner)

    def _pending_update(
        self, user_id: str, org_id: str, action: str, attribute: str = "orgs"
    ) -> None:
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key(PENDING_KEY_PREFIX, user_id),
                UpdateExpression=f"{action} {attribute} :org",
                ExpressionAttributeValues={":org": {"SS": [org_id]}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, "writing a pending membership") from exc

    def add_pending(self, user_id: str, org_id: str) -> None:
        self._pending_update(user_id, org_id, "ADD")

    def drop_pending(self, user_id: str, org_id: str) -> None:
        self._pending_update(user_id, org_id, "DELETE")

    def peek(self, org_id: str) -> OrgState:
        try:
            response = self.client.get_item(
                TableName=self._table_name,
                Key=self._key(ORG_KEY_PREFIX, org_id),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, "reading the organization's state") from exc
        text = _plain(response.get("Item", {})).get("org")
        return OrgState.from_json(org_id, text if isinstance(text, str) else None)

    def add_member(self, user_id: str, org_id: str) -> None:
        self._pending_update(user_id, org_id, "ADD", "member_of")

    def drop_member(self, user_id: str, org_id: str) -> None:
        self._pending_update(user_id, org_id, "DELETE", "member_of")

    def _index(self, user_id: str) -> dict[str, object]:
        try:
            response = self.client.get_item(
                TableName=self._table_name,
                Key=self._key(PENDING_KEY_PREFIX, user_id),
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _state_error(exc, "reading pending memberships") from exc
        return _plain(response.get("Item", {}))

    @staticmethod
    def _set(value: object) -> set[str]:
        return {str(o) for o in value} if isinstance(value, set) else set()

    def pending(self, user_id: str) -> set[str]:
        return self._set(self._index(user_id).get("orgs"))

    def orgs_of(self, user_id: str) -> set[str]:
        item = self._index(user_id)
        return self._set(item.get("orgs")) | self._set(item.get("member_of"))


@dataclass
class MemoryOrgStateStore:
    """The same contract in process memory (`auth0-sync process` without AWS, unit tests)."""

    _items: dict[str, str] = field(default_factory=dict)
    _leases: dict[str, tuple[str, float]] = field(default_factory=dict)
    _pending: dict[str, set[str]] = field(default_factory=dict)
    _member_of: dict[str, set[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, org_id: str, owner: str, lease_seconds: float) -> OrgState:
        with self._lock:
            held = self._leases.get(org_id)
            if held is not None and held[1] >= time.time():
                raise _lease_held(org_id)
            self._leases[org_id] = (owner, time.time() + lease_seconds)
            return OrgState.from_json(org_id, self._items.get(org_id))

    def commit(self, state: OrgState, owner: str) -> None:
        with self._lock:
            held = self._leases.get(state.org_id)
            if held is None or held[0] != owner:
                raise TransientError(f"lease on organization {state.org_id} lost", "lease_lost")
            self._items[state.org_id] = state.to_json()
            del self._leases[state.org_id]

    def release(self, org_id: str, owner: str) -> None:
        with self._lock:
            held = self._leases.get(org_id)
            if held is not None and held[0] == owner:
                del self._leases[org_id]

    def add_pending(self, user_id: str, org_id: str) -> None:
        with self._lock:
            self._pending.setdefault(user_id, set()).add(org_id)

    def drop_pending(self, user_id: str, org_id: str) -> None:
        with self._lock:
            self._pending.get(user_id, set()).discard(org_id)

    def pending(self, user_id: str) -> set[str]:
        with self._lock:
            return set(self._pending.get(user_id, set()))

    def add_member(self, user_id: str, org_id: str) -> None:
        with self._lock:
            self._member_of.setdefault(user_id, set()).add(org_id)

    def drop_member(self, user_id: str, org_id: str) -> None:
        with self._lock:
            self._member_of.get(user_id, set()).discard(org_id)

    def orgs_of(self, user_id: str) -> set[str]:
        with self._lock:
            return self._pending.get(user_id, set()) | self._member_of.get(user_id, set())

    def peek(self, org_id: str) -> OrgState:
        with self._lock:
            return OrgState.from_json(org_id, self._items.get(org_id))

    def get(self, org_id: str) -> OrgState | None:
        """For tests and reports: the committed state."""
        with self._lock:
            text = self._items.get(org_id)
        return None if text is None else OrgState.from_json(org_id, text)
