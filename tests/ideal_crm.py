"""The CRM a perfect sync would leave, built from a truth alone: a reconciliation against it
must find nothing, and against it with one planted fault must find exactly that fault."""

from __future__ import annotations

from typing import Any

from auth0_sync_cli.truth import ACTIVE, DEACTIVATED, Options, Truth


def pick(options: Options) -> str | None:
    """One allowed value, a real one where there is one."""
    return min(options, key=lambda value: (value is None, value or ""))


def ideal_writes(truth: Truth) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """(fields to write on each contact from before, by id; the contacts to create)."""
    changes: dict[str, dict[str, Any]] = {}
    new: list[dict[str, Any]] = []
    for expected in truth.users.values():
        if expected.taken_over is not None or expected.ending == "linked" or not expected.synced:
            continue  # no contact may carry the id / the secondary needs none / never synced
        fields: dict[str, Any] = {name: pick(opts) for name, opts in expected.allowed.items()}
        fields.update(expected.fields)
        fields["auth0_user_id"] = expected.user_id
        active = expected.status == ACTIVE and not expected.blocked
        fields["status"] = ACTIVE if active else DEACTIVATED
        if expected.preexisting is not None:
            contact_id = truth.preexisting[expected.preexisting].contact_id
            assert contact_id is not None
            changes[contact_id] = fields
        else:
            new.append(fields)
    return changes, new


def ideal_contacts(truth: Truth) -> list[dict[str, Any]]:
    """The whole ideal CRM as contacts, without a server (ids `new_<n>` for created ones)."""
    changes, new = ideal_writes(truth)
    contacts = []
    for item in truth.preexisting:
        assert item.contact_id is not None
        contact = {"id": item.contact_id, "status": ACTIVE, **item.fields}
        contacts.append({**contact, **changes.get(item.contact_id, {})})
    contacts += [{"id": f"new_{n}", **fields} for n, fields in enumerate(new)]
    return contacts
