"""Per-user sync state: what was last applied to the CRM for each Auth0 user.

Every change for one user runs under a short lease taken with a conditional write, and the
result is written back on the condition that we still hold it. Two invocations for the same
user therefore never interleave, so an older change can never overwrite a newer one; a lease
left by a crashed invocation expires with that invocation's time budget.

Leases are per Auth0 user, so two users can race for one contact; claiming a contact is
therefore a compare-and-set on a claim item of its own (key `#contact#<id>`, never an Auth0
user id: those always start with a provider name).

The state's parts: the record and the store contract (`auth0_sync.state_model`), the
DynamoDB store (`auth0_sync.state_dynamo`) and the in-memory one (`auth0_sync.state_memory`);
every name is imported from here.
"""

from auth0_sync.state_dynamo import (
    CLAIM_KEY_PREFIX,
    TOMBSTONE_RETENTION_SECONDS,
    DynamoSyncStateStore,
    StateTable,
    _lease_until,
    _plain,
    _state_error,
    _values,
    take_lease,
    tombstone_expiry,
)
from auth0_sync.state_memory import MemorySyncStateStore
from auth0_sync.state_model import (
    _FIELDS,
    Settled,
    StateStore,
    SyncState,
    Unchanged,
    _copy,
    _from_item,
    order_key_text,
)

__all__ = [
    "CLAIM_KEY_PREFIX",
    "TOMBSTONE_RETENTION_SECONDS",
    "_FIELDS",
    "DynamoSyncStateStore",
    "MemorySyncStateStore",
    "Settled",
    "StateStore",
    "StateTable",
    "SyncState",
    "Unchanged",
    "_copy",
    "_from_item",
    "_lease_until",
    "_plain",
    "_state_error",
    "_values",
    "order_key_text",
    "take_lease",
    "tombstone_expiry",
]
