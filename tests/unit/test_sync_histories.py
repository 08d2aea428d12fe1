"""Random Auth0 histories, delivered in random orders with duplicates, end at the truth.

The truth is written here from each user's own history (what Auth0 holds last), not with
the mapping code: one active contact per live user with its latest values, no active
contact for a deleted one, and the contact of a live user nobody syncs left untouched.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.builders import at, created, deleted, updated
from tests.unit.test_sync_core import World

pytestmark = pytest.mark.unit

OPS = st.sampled_from(["name", "phone", "phone_null", "phone_removed", "login", "hint", "delete"])
FOREIGN = "auth0|someone-else"


def history(n: int, ops: list[str], foreign_contact: str) -> tuple[list[dict[str, Any]], Any]:
    """One user's events in the order they happened, and what the CRM must end with."""
    user_id = f"google-oauth2|{1000 + n}"  # social: a re-signup brings the same id back
    email = f"user{n}@example.com"
    minute = 0.0
    name, phone = f"User {n}", None
    alive = True
    events = [created(user_id, at(minute), email=email, name=name)]
    for op in ops:
        minute += 1
        if not alive:  # after a delete, the next step is a signup again (a new life)
            name, phone, alive = f"User {n} again", None, True
            events.append(created(user_id, at(minute), email=email, name=name))
            continue
        profile: dict[str, Any] = {"email": email, "name": name}
        if phone is not None:
            profile["phone_number"] = phone
        previous = None
        if op == "name":
            name = profile["name"] = f"User {n} v{minute:g}"
        elif op == "phone":
            phone = profile["phone_number"] = f"+44770090{int(minute):04d}"
        elif op == "phone_null":
            phone, profile["phone_number"] = None, None
        elif op == "phone_removed" and phone is not None:
            previous = {"phone_number": phone}
            phone = None
            del profile["phone_number"]
        elif op == "login":
            profile["last_login"] = at(minute).isoformat()
        elif op == "hint":
            profile["app_metadata"] = {"crm_contact_id": foreign_contact}
        elif op == "delete":
            alive = False
            events.append(deleted(user_id, at(minute)))
            continue
        events.append(updated(user_id, at(minute), previous=previous, **profile))
    truth = (email, name, phone) if alive else None
    return events, (user_id, truth)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(st.lists(OPS, max_size=6), min_size=1, max_size=3),
    data=st.data(),
)
def test_any_order_with_duplicates_ends_at_the_truth(ops: list[list[str]], data: Any) -> None:
    world = World()
    foreign = world.crm.add(auth0_user_id=FOREIGN, email="other@example.com", name="Other")
    before = dict(world.crm.contacts[foreign])
    stream, truths = [], []
    for n, user_ops in enumerate(ops):
        events, truth = history(n, user_ops, foreign)
        stream.extend(events)
        truths.append(truth)
    duplicates = data.draw(st.lists(st.sampled_from(stream), max_size=4))
    order = data.draw(st.permutations(stream + duplicates))

    world.deliver(order)

    assert world.dead == []
    assert world.crm.contacts[foreign] == before  # never written for anyone else
    for user_id, truth in truths:
        active = world.active(user_id)
        if truth is None:
            assert active == []
            continue
        email, name, phone = truth
        assert len(world.crm.owned_by(user_id)) == 1
        [contact] = active
        assert (contact["email"], contact["name"], contact.get("phone")) == (email, name, phone)
