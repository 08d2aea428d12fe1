"""`auth0-sync process --dry-run`: what each event would do under the configured
SYNC_MODE and policies, with no write.

Each event runs through the service the handlers run, against replay's read-only adapters
(`auth0_sync_cli.replay.planning`): the CRM is read (GETs, searches) and every write the sync
would send is recorded at the destination's HTTP session and answered there, never sent; the
state is read, never written, and no lease is taken. So each event is planned against the
CRM and the state as they are now: the events of one file do not see each other's effects
(a signup and its update in one file both plan from the same empty state).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from auth0_sync.errors import TransientError
from auth0_sync.events import identity_of
from auth0_sync.outcome import Applied, Outcome
from auth0_sync.settings import Settings
from auth0_sync.state import DynamoSyncStateStore, MemorySyncStateStore
from auth0_sync_cli.replay.planning import Planner

# What an applied outcome would do, in one word a person reads at a glance.
_ACTIONS: dict[str, str] = {
    Applied.CREATED: "create",
    Applied.LINKED: "update",
    Applied.UPDATED: "update",
    Applied.REACTIVATED: "update",
    Applied.DEACTIVATED: "deactivate",
    Applied.ANONYMIZED: "deactivate",
    Applied.ARCHIVED: "deactivate",
    Applied.ERASED: "deactivate",
}


@dataclass(frozen=True)
class Planned:
    """One event's plan: `action` create / update / deactivate / skip / dead-letter /
    retry, why (`reason`), and the requests it would send."""

    where: str
    event_id: str | None
    event_type: str | None
    user_id: str | None
    action: str
    reason: str
    requests: list[str]

    def line(self) -> str:
        ids = "  ".join(x or "-" for x in (self.event_id, self.event_type, self.user_id))
        head = f"{self.where}  {ids}  would {self.action} ({self.reason})"
        return "\n".join([head, *(f"    {request}" for request in self.requests)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "user_id": self.user_id,
            "action": self.action,
            "reason": self.reason,
            "requests": self.requests,
        }


def action_of(outcome: Outcome) -> str:
    if outcome.status == "applied":
        return _ACTIONS.get(outcome.reason, "write")  # an organization's company, membership
    if outcome.status == "skipped":
        return "skip"
    return "dead-letter"


def plan_events(
    settings: Settings, events: Iterable[tuple[str, Any]], uses_aws: bool, timeout: float
) -> list[Planned]:
    """Each event's plan; with `uses_aws`, against the state table as stored."""
    state = DynamoSyncStateStore(settings.state_table) if uses_aws else MemorySyncStateStore()
    planner = Planner(settings, state, timeout=timeout)
    plans = []
    for where, raw in events:
        ids = identity_of(raw)
        try:
            outcome, requests = planner.plan(raw)
        except TransientError as exc:
            # Lambda would retry it (then the DLQ): nothing is planned past the failure.
            plans.append(
                Planned(
                    where,
                    ids["event_id"],
                    ids["event_type"],
                    ids["user_id"],
                    "retry",
                    exc.reason,
                    [],
                )
            )
            continue
        plans.append(
            Planned(
                where,
                outcome.event_id or ids["event_id"],
                outcome.event_type or ids["event_type"],
                outcome.user_id or ids["user_id"],
                action_of(outcome),
                outcome.reason,
                requests,
            )
        )
    return plans


def render(plans: list[Planned], settings: Settings, name: str, as_json: bool) -> str:
    config = {
        "sync_mode": str(settings.sync_mode),
        "delete_policy": str(settings.delete_policy),
        "missing_contact_policy": str(settings.missing_contact_policy),
        "no_email_policy": str(settings.no_email_policy),
        "blocked_policy": str(settings.blocked_policy),
    }
    counts: dict[str, int] = {}
    for plan in plans:
        counts[plan.action] = counts.get(plan.action, 0) + 1
    if as_json:
        document = {
            "dry_run": True,
            "file": name,
            "configuration": config,
            "would": counts,
            "events": [plan.to_dict() for plan in plans],
        }
        return json.dumps(document, indent=2)
    settings_line = ", ".join(f"{k}={v}" for k, v in config.items())
    lines = [f"dry run of {name} (nothing written; {settings_line}):"]
    lines.extend(plan.line() for plan in plans)
    lines.append("would: " + ", ".join(f"{action} {n}" for action, n in sorted(counts.items())))
    return "\n".join(lines)
