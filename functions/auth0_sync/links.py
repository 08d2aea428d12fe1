"""Account links and unlinks, as the state records them: the rule, stated once.

Auth0 links a secondary account into a primary by sending the primary's `user.updated`
(its `identities[]` now lists the secondary) and the secondary's `user.deleted`. A linked
secondary no longer exists as a user, so it sends no events of its own. Unlinking makes it
a standalone user again with the same `user_id`, with no metadata; the primary's next
`user.updated` shows `identities[]` without it
(https://auth0.com/docs/manage-users/user-accounts/user-account-linking/unlink-user-accounts).

So a secondary's event newer than the primary's event that showed the link (`linked_at`)
comes from after an unlink: it is the secondary's own again, and it writes the
secondary's own contact, never the one its primary took at the link.
"""

from __future__ import annotations

from auth0_sync.state import SyncState, order_key_text


def standalone_again(secondary: SyncState, event_key: str) -> bool:
    """Whether this event of a linked secondary comes from after an unlink."""
    if secondary.linked_to is None:
        return False
    if secondary.linked_at:
        return event_key > secondary.linked_at
    # A state marked before links were dated: newer than its link's delete (a new life).
    return secondary.deleted_at is not None


def unlinked_since(secondary: SyncState) -> bool:
    """Whether the secondary has applied an event of its own newer than its link (and was
    not deleted since): its contact is its own again, not its primary's to take."""
    key = secondary.order_key
    return (
        secondary.linked_at is not None
        and secondary.deleted_at is None
        and key is not None
        and order_key_text(key) > secondary.linked_at
    )
