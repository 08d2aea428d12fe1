"""How one event ended: applied (and what it did), skipped for a reason, or dead-lettered."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

Status = Literal["applied", "skipped", "dead_lettered"]


class Applied(StrEnum):
    """What an applied event did to the CRM."""

    CREATED = "created"
    LINKED = "linked"
    UPDATED = "updated"
    REACTIVATED = "reactivated"
    DEACTIVATED = "deactivated"
    ANONYMIZED = "anonymized"
    ARCHIVED = "archived"
    ERASED = "erased"  # HubSpot's GDPR delete: removed permanently
    # Organization events (auth0_sync.organizations).
    COMPANY_CREATED = "company_created"
    COMPANY_UPDATED = "company_updated"
    COMPANY_DEACTIVATED = "company_deactivated"
    MEMBERSHIP_SET = "membership_set"
    MEMBERSHIP_REMOVED = "membership_removed"


@dataclass(frozen=True)
class Outcome:
    """How one event ended: applied, skipped for a counted reason, or dead-lettered."""

    status: Status
    reason: str
    event_id: str | None = None
    event_type: str | None = None
    user_id: str | None = None
    contact_id: str | None = None
    crm_calls: int = 0
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
