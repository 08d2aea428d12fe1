"""Domain errors. Adapters turn foreign errors (botocore, requests) into these, once."""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error the sync raises on purpose."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TransientError(SyncError):
    """Worth retrying later: 429, 408, 5xx, timeouts, connection errors, a held lease."""

    def __init__(self, message: str, reason: str = "transient") -> None:
        super().__init__(reason, message)


class PermanentError(SyncError):
    """Retrying cannot help: the event goes to the DLQ at once with its reason."""


class InvalidEvent(PermanentError):
    """The event does not match the schema; the message names the field."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_event", message)


class AmbiguousMatch(PermanentError):
    """Several CRM contacts match one Auth0 user: we never guess."""

    def __init__(self, message: str) -> None:
        super().__init__("ambiguous_match", message)


class CrmRejected(PermanentError):
    """The CRM answered a 4xx that retrying cannot fix (422, 409, 400, 401, 403...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"crm_{status}", message)
        self.status = status


class ContactExists(CrmRejected):
    """POST answered 409: a contact with this email exists already (link it instead)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, message)


class ConfigError(Exception):
    """Configuration is missing or wrong; raised at start-up, naming the variable."""


class ManagementApiError(SyncError):
    """An Auth0 Management API call failed; the message names the call and what to do."""

    def __init__(self, call: str, message: str, status: int | None = None) -> None:
        super().__init__(f"auth0_{status or 'unreachable'}", f"{call}: {message}")
        self.call = call
        self.status = status
