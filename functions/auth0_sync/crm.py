"""Kept importable for older imports: the CRM protocol and adapters live in
`auth0_sync.destinations` (one module per destination, one shared HTTP transport)."""

from auth0_sync.destinations import Contact, Crm, RemainingMillis
from auth0_sync.destinations.rest import RestCrmClient
from auth0_sync.destinations.transport import (
    CIRCUIT_COOL_DOWN_SECONDS,
    TRANSIENT_STATUSES,
    CircuitBreaker,
)

__all__ = [
    "CIRCUIT_COOL_DOWN_SECONDS",
    "TRANSIENT_STATUSES",
    "CircuitBreaker",
    "Contact",
    "Crm",
    "RemainingMillis",
    "RestCrmClient",
]
