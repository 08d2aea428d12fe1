"""Domain errors. Adapters turn foreign errors (botocore, requests) into these, once.

`str()` of every `SyncError` is `"<reason>: <message>"`: Lambda's on-failure record keeps
only the exception's type and message (`responsePayload.errorType` / `errorMessage`), so
the reason must travel at the start of the message for the DLQ readers and the redrive.
"""

from __future__ import annotations

import re

REASON_PATTERN = re.compile(r"^([a-z][a-z0-9_]*): ")


class SyncError(Exception):
    """Base of every error the sync raises on purpose."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class TransientError(SyncError):
    """Worth retrying later: 429, 408, 5xx, timeouts, connection errors, a held lease."""

    def __init__(self, message: str, reason: str = "transient") -> None:
        super().__init__(reason, message)


class LeaseHeld(TransientError):
    """Another invocation holds the user's lease, until `until` (epoch seconds; None if
    unknown). A lease outlives its invocation a little, so one that died (a killed run)
    leaves it held until then; Lambda's retries come later than that, the local runner
    waits for it."""

    def __init__(self, user_id: str, until: float | None = None) -> None:
        super().__init__(f"user {user_id} is being synced by another invocation", "lease_held")
        self.until = until


class EmailConflict(TransientError):
    """The CRM refused an email change: another contact holds that address (for now).

    The rest of the event was written; the email follows when the other contact lets the
    address go (an email swap between two users resolves on the retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "email_conflict")


class ContactChanged(TransientError):
    """A conditional write was refused (412): the contact changed since the version the
    write was based on (a person's edit, a reassignment, or our own write whose answer was
    lost). The core reads the contact again before it writes anything else."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "crm_412")


class CredentialsRejected(TransientError):
    """The CRM refused the credential from the CRM secret, also after reading the secret
    again past its cache (a token rotated in the CRM before the secret was updated, or an
    expired client secret). Retried by the redrive once the secret holds the current one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "crm_credentials_rejected")


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


class OwnedByOther(TransientError):
    """The only contact this user could be written to belongs to another live Auth0 user.

    Retried, because it often resolves itself: the other user's delete (a re-signup) or
    the account link is still on its way. What is still refused after the retries waits
    in the DLQ for a person (link the accounts, or free the contact)."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message, "owned_by_other")
        self.owner = owner  # the Auth0 user the contact belongs to


class InternalError(PermanentError):
    """Something nobody foresaw; the event is kept in the DLQ with the exception's class."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__("internal_error", f"{type(exc).__name__} (see the function's log)")


class CrmRejected(PermanentError):
    """The CRM answered a 4xx that retrying cannot fix (422, 409, 400, 401, 403...)."""

    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(reason or f"crm_{status}", message)
        self.status = status


class ContactExists(CrmRejected):
    """POST answered 409: a contact with this email exists already (link it instead)."""

    def __init__(self, message: str) -> None:
        super().__init__(409, message)


class EmailTaken(CrmRejected):
    """PATCH answered 409: another contact holds the email this change gives (unique emails)."""

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


def reason_of(error_message: str) -> str | None:
    """The reason at the start of a `SyncError`'s text (as Lambda's record keeps it)."""
    match = REASON_PATTERN.match(error_message or "")
    return match.group(1) if match else None
