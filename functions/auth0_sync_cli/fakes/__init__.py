"""Local fakes of the vendor CRMs (HubSpot, Salesforce), written from the vendors' public
API documentation and served on loopback: parts of `auth0-sync demo --crm` and of the
tests. `DemoCrm` is what the demo drives on any of them (the reference CRM included)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol


class DemoCrm(Protocol):
    """What `auth0-sync demo` drives on the CRM it runs: faults, counts, seeding."""

    @property
    def base_url(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def set_outage(self, status: int | None) -> None:
        """Every request answers `status`, in the vendor's error body; None: off."""

    def set_rate_limit(self, rps: float | None) -> None:
        """The vendor's own over-limit answer above `rps` requests a second; None: off."""

    def stats(self) -> dict[str, Any]:
        """`{"total": n, "by_method": {...}, "by_status": {...}}` of the answered requests."""
        ...

    def seed_contact(self, **fields: Any) -> dict[str, Any]:
        """A contact from before the sync, from generic fields; it, with its `id`."""
        ...


def stats_of(answered: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """Request counts from (method, status) pairs, in the reference CRM's stats shape."""
    pairs = list(answered)
    by_method = Counter(method for method, _ in pairs)
    by_status = Counter(str(status) for _, status in pairs)
    return {
        "total": len(pairs),
        "by_method": {"GET": 0, "POST": 0, "PATCH": 0, **by_method},
        "by_status": dict(sorted(by_status.items())),
    }
