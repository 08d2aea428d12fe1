"""One user's history of events, and hypothesis deliveries of it (any order, redelivered
copies), for the exactly-once suites of every destination."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from auth0_sync_cli.sample import EPOCH, bus_event

_users = itertools.count()

History = tuple[list[dict[str, Any]], dict[str, Any]]
OPS = ["login", "name", "email", "phone"]


def history(
    ops: list[str],
    delete: bool,
    *,
    prefix: str = "prop",
    names: Mapping[str, str] | None = None,
    renamed: str = "name",
) -> History:
    """A new user's events in the order they happened, and the final profile. `names`: the
    name attributes it starts with; the `name` op changes `renamed`. A `login` moves
    `last_login` with `updated_at` (as Auth0 stamps a login); the other ops are edits."""
    n = next(_users)
    user_id = f"auth0|{prefix}{n:08d}"
    moment = EPOCH
    profile: dict[str, Any] = {
        "user_id": user_id,
        "email": f"{prefix}{n}@example.com",
        **(names or {"name": "Initial Name"}),
        "created_at": moment.isoformat(),
        "updated_at": moment.isoformat(),
        "identities": [],
    }
    events = [bus_event("user.created", copy.deepcopy(profile), moment, f"evt_{prefix}{n}_0")]
    for step, op in enumerate(ops, start=1):
        moment += timedelta(seconds=10)
        if op == "login":
            profile["last_login"] = moment.isoformat()
        elif op == "name":
            profile[renamed] = f"Name {step}"
        elif op == "email":
            profile["email"] = f"{prefix}{n}.v{step}@example.com"
        else:
            profile["phone_number"] = f"+4477009{step:05d}"
        profile["updated_at"] = moment.isoformat()
        events.append(
            bus_event("user.updated", copy.deepcopy(profile), moment, f"evt_{prefix}{n}_{step}")
        )
    if delete:
        moment += timedelta(seconds=10)
        gone = {"user_id": user_id, "deleted_at": moment.isoformat()}
        events.append(bus_event("user.deleted", gone, moment, f"evt_{prefix}{n}_del"))
    return events, profile


@st.composite
def deliveries(
    draw: st.DrawFn, make: Callable[[list[str], bool], History], max_ops: int
) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
    """A history made by `make`, delivered in any order, with copies of some events
    inserted at later points (redeliveries)."""
    ops = draw(st.lists(st.sampled_from(OPS), max_size=max_ops))
    delete = draw(st.booleans())
    events, final = make(ops, delete)
    order = draw(st.permutations(range(len(events))))
    delivered = [events[i] for i in order]
    for index in draw(st.lists(st.integers(0, len(events) - 1), max_size=len(events))):
        delivered.insert(draw(st.integers(0, len(delivered))), copy.deepcopy(events[index]))
    return delivered, final, delete
