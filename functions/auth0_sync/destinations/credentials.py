"""A credential the destination refuses is read again once, past the cache, before the call
is given up; a refusal that persists is `CredentialsRejected`, a transient failure that the
redrive retries once someone puts the current credential into the secret.

The secret is cached (`auth0_sync.runtime.SECRET_MAX_AGE_SECONDS`), so a token rotated in
the CRM would otherwise fail every event for up to that long, and each of them for good.
One mechanism for the three adapters: a bearer token (rest, hubspot) and Salesforce's
client credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from auth0_sync.errors import CredentialsRejected

if TYPE_CHECKING:
    import requests

T = TypeVar("T")

REFUSED_HINT = (
    "the CRM refused the credential from the CRM secret, also after reading the secret "
    "again: put the current one into it (CRM_TOKEN_SECRET_ARN; locally CRM_API_TOKEN); "
    "the redrive retries these events once the CRM accepts it"
)


class Cached(Generic[T]):
    """A value read through a cache (a secret): calling it may answer the cached value,
    `fresh()` reads past the cache."""

    def __init__(self, read: Callable[[bool], T]) -> None:
        self._read = read

    def __call__(self) -> T:
        return self._read(False)

    def fresh(self) -> T:
        return self._read(True)


def current(provider: Callable[[], T], *, fresh: bool = False) -> T:
    """The provider's value; with `fresh`, past its cache (a plain callable has none, so it
    is simply called again)."""
    if fresh and isinstance(provider, Cached):
        value: T = provider.fresh()
        return value
    return provider()


def with_fresh_credential(
    send: Callable[[bool], requests.Response],
    refused: Callable[[requests.Response], bool],
    what: str,
) -> requests.Response:
    """`send(False)` with the cached credential; when its answer says the credential was
    refused, `send(True)` once with one read past the cache (a refused request was not
    processed, so sending it again is safe). Still refused: `CredentialsRejected`."""
    response = send(False)
    if not refused(response):
        return response
    response = send(True)
    if refused(response):
        raise CredentialsRejected(f"{what}: HTTP {response.status_code}: {REFUSED_HINT}")
    return response


def bearer_refused(response: requests.Response) -> bool:
    """A bearer token refused: 401 (the generic contract; HubSpot's INVALID_AUTHENTICATION,
    https://developers.hubspot.com/docs/api/error-handling)."""
    return response.status_code == 401
