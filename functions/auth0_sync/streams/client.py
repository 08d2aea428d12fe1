"""Auth0 Management API client for event streams: token, retries on 429, errors naming the call.

Every failure becomes a `ManagementApiError` whose message names the call (`GET /api/v2/...`)
and says what to do: the scope a 401/403 needs, what a 409 means for that call. Secrets (the
client secret, access tokens, webhook tokens) are scrubbed from every message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from auth0_sync import privacy
from auth0_sync.destinations.transport import (
    HttpTransport,
    RetryPolicy,
    last_answer,
    retry_after,
)
from auth0_sync.errors import ConfigError, ManagementApiError, SyncError
from auth0_sync.names import SERVICE_NAME, Env

API_PREFIX = "/api/v2"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a secret
# Auth0 caps `take` at 100 on paged list calls.
MAX_PAGE_SIZE = 100
# A stream list longer than this many pages means the server ignores `from`: stop, not loop.
MAX_LIST_PAGES = 100
REDACTED = "***"
# Keys whose values are secrets wherever they appear in a document we print.
SECRET_KEYS = frozenset({"token", "password", "client_secret", "access_token"})

# Scopes the Management API checks per call (its OpenAPI description, "oAuth2ClientCredentials").
READ_STREAMS = "read:event_streams"
CREATE_STREAMS = "create:event_streams"
UPDATE_STREAMS = "update:event_streams"
DELETE_STREAMS = "delete:event_streams"
READ_DELIVERIES = "read:event_deliveries"
UPDATE_DELIVERIES = "update:event_deliveries"

STATUS_ENABLED = "enabled"
STATUS_DISABLED = "disabled"
DELIVERY_FAILED = "failed"
DESTINATION_EVENTBRIDGE = "eventbridge"
DESTINATION_WEBHOOK = "webhook"
PARTNER_SOURCE_KEY = "aws_partner_event_source"


def parse_base_url(value: str, source: str) -> str:
    """`acme.eu.auth0.com` -> `https://acme.eu.auth0.com`; a full URL is kept (http: loopback)."""
    text = value.strip()
    if not text:
        raise ConfigError(
            f"{source} is empty: set it to your tenant domain, e.g. acme.eu.auth0.com"
        )
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source}={text!r} is neither a domain nor an http(s) URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{source}={text!r} must be a domain or a base URL without a path")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # The client secret and tokens travel in these requests: plain http only on loopback.
        raise ConfigError(f"{source}={text!r}: http is allowed for a loopback host only; use https")
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ManagementCredentials:
    """Where the tenant is and how to authenticate: a ready token, or client credentials."""

    base_url: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)

    @property
    def audience(self) -> str:
        return f"{self.base_url}{API_PREFIX}/"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], token_file: str | None = None
    ) -> ManagementCredentials:
        """Read AUTH0_DOMAIN plus a token (`token_file`, AUTH0_MGMT_TOKEN_FILE or
        AUTH0_MGMT_TOKEN) or AUTH0_CLIENT_ID/AUTH0_CLIENT_SECRET."""
        domain = environ.get(Env.AUTH0_DOMAIN)
        if domain is None:
            raise ConfigError(f"{Env.AUTH0_DOMAIN} is not set: your tenant domain or base URL")
        base_url = parse_base_url(domain, Env.AUTH0_DOMAIN)
        token = environ.get(Env.AUTH0_MGMT_TOKEN, "").strip()
        file_source = "--token-file" if token_file else Env.AUTH0_MGMT_TOKEN_FILE
        token_file = token_file or environ.get(Env.AUTH0_MGMT_TOKEN_FILE, "").strip() or None
        if token_file is not None:
            if token:
                raise ConfigError(
                    f"give the Management API token once: {file_source} or "
                    f"{Env.AUTH0_MGMT_TOKEN}, not both"
                )
            return cls(base_url=base_url, token=read_token_file(token_file, file_source))
        if token:
            return cls(base_url=base_url, token=token)
        client_id = environ.get(Env.AUTH0_CLIENT_ID, "").strip()
        client_secret = environ.get(Env.AUTH0_CLIENT_SECRET, "").strip()
        missing = [
            name
            for name, v in (
                (Env.AUTH0_CLIENT_ID, client_id),
                (Env.AUTH0_CLIENT_SECRET, client_secret),
            )
            if not v
        ]
        if missing:
            raise ConfigError(
                f"set {Env.AUTH0_MGMT_TOKEN} (or {Env.AUTH0_MGMT_TOKEN_FILE}, --token-file), or "
                f"{Env.AUTH0_CLIENT_ID} and {Env.AUTH0_CLIENT_SECRET} "
                f"(missing: {', '.join(missing)})"
            )
        return cls(base_url=base_url, client_id=client_id, client_secret=client_secret)

    @classmethod
    def from_secret(cls, secret: Any, source: str) -> ManagementCredentials:
        """Read a Secrets Manager document `{"domain", "client_id", "client_secret"}`."""
        if not isinstance(secret, Mapping):
            raise ConfigError(f"{source}: the secret must be a JSON object")
        missing = [k for k in ("domain", "client_id", "client_secret") if not secret.get(k)]
        if missing:
            raise ConfigError(f"{source}: the secret lacks {', '.join(missing)}")
        return cls(
            base_url=parse_base_url(str(secret["domain"]), f"{source} domain"),
            client_id=str(secret["client_id"]),
            client_secret=str(secret["client_secret"]),
        )


def read_token_file(path: str, source: str, what: str = "the Management API token") -> str:
    """The secret in `path` (surrounding whitespace stripped); a warning if others may read
    it. `source` names where the path came from (a flag, a variable) in the error."""
    file = Path(path).expanduser()
    try:
        token = file.read_text(encoding="utf-8").strip()
        mode = file.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{source} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source} {path}: cannot read it ({exc.__class__.__name__})") from None
    if not token:
        raise ConfigError(f"{source} {path} is empty: it must hold {what}")
    if mode & 0o077:
        print(f"warning: {path} can be read by other users; `chmod 600 {path}`", file=sys.stderr)
    return token


@dataclass
class _CachedToken:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens by (tenant, client id, audience) until they expire, shared in a process.

    Auth0 counts the machine-to-machine tokens it issues per month, and a warm Lambda runs
    the health check every few minutes: one token serves until it expires.
    """

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], _CachedToken] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str], now: float) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
            return cached.value if cached and cached.expires_at > now else None

    def put(self, key: tuple[str, str, str], value: str, expires_at: float) -> None:
        with self._lock:
            self._tokens[key] = _CachedToken(value, expires_at)

    def drop(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKEN_CACHE = TokenCache()

TOKEN_CACHE_FILE = "management-tokens.json"  # noqa: S105 - a file name


def default_token_cache_path(environ: Mapping[str, str]) -> Path:
    """`$XDG_CACHE_HOME/auth0-sync/management-tokens.json` (default `~/.cache`)."""
    base = environ.get(Env.XDG_CACHE_HOME) or str(Path.home() / ".cache")
    return Path(base) / SERVICE_NAME / TOKEN_CACHE_FILE


class FileTokenCache(TokenCache):
    """A TokenCache kept in a file only this user can read (0600, in a 0700 folder).

    The CLI is one process per command; Auth0 meters the machine-to-machine tokens it
    issues, so one token serves every run until it expires. Expiry is wall-clock time
    (`time.time`, the client's clock). A file that others could read, or that another user
    owns, is never trusted: it is ignored and replaced on the next write. The cache is a
    convenience: any error reading or writing it only costs a fresh token.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def get(self, key: tuple[str, str, str], now: float) -> str | None:
        cached = super().get(key, now)
        if cached is not None:
            return cached
        entry = self._load().get(_file_key(key))
        if not isinstance(entry, dict):
            return None
        value, expires_at = entry.get("token"), entry.get("expires_at")
        if not isinstance(value, str) or not isinstance(expires_at, int | float):
            return None
        if expires_at <= now:
            return None
        super().put(key, value, float(expires_at))
        return value

    def put(self, key: tuple[str, str, str], value: str, expires_at: float) -> None:
        super().put(key, value, expires_at)
        self._update(lambda entries: entries.update({_file_key(key): _entry(value, expires_at)}))

    def drop(self, key: tuple[str, str, str]) -> None:
        super().drop(key)
        self._update(lambda entries: entries.pop(_file_key(key), None))

    def _load(self) -> dict[str, Any]:
        try:
            info = self.path.stat()
            if info.st_uid != os.getuid() or info.st_mode & 0o077:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _update(self, change: Callable[[dict[str, Any]], object]) -> None:
        entries = self._load()
        change(entries)
        now = time.time()
        entries = {
            k: v
            for k, v in entries.items()
            if isinstance(v, dict) and isinstance(v.get("expires_at"), int | float)
            if v["expires_at"] > now
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL + 0600: the token is never, even briefly, in a file others can open.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()


def _file_key(key: tuple[str, str, str]) -> str:
    return " ".join(key)


def _entry(value: str, expires_at: float) -> dict[str, Any]:
    return {"token": value, "expires_at": expires_at}


def redact(document: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of `document` with secret-named keys and the given secret values replaced."""
    known = [s for s in secrets if s]
    if isinstance(document, Mapping):
        return {
            k: REDACTED if k in SECRET_KEYS and v else redact(v, known) for k, v in document.items()
        }
    if isinstance(document, list):
        return [redact(item, known) for item in document]
    if isinstance(document, str):
        return scrub(document, known)
    return document


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def eventbridge_stream_body(
    name: str, aws_account_id: str, aws_region: str, event_types: Sequence[str]
) -> dict[str, Any]:
    """Create body for a stream to an AWS account's EventBridge (partner event source)."""
    return {
        "name": name,
        "subscriptions": [{"event_type": t} for t in event_types],
        "destination": {
            "type": DESTINATION_EVENTBRIDGE,
            "configuration": {"aws_account_id": aws_account_id, "aws_region": aws_region},
        },
    }


def webhook_stream_body(
    name: str, endpoint: str, bearer_token: str, event_types: Sequence[str]
) -> dict[str, Any]:
    """Create body for a stream to an https endpoint authenticated with a bearer token."""
    return {
        "name": name,
        "subscriptions": [{"event_type": t} for t in event_types],
        "destination": {
            "type": DESTINATION_WEBHOOK,
            "configuration": {
                "webhook_endpoint": endpoint,
                "webhook_authorization": {"method": "bearer", "token": bearer_token},
            },
        },
    }


class ManagementClient:
    """The event-stream calls of the Auth0 Management API, over one requests.Session."""

    def __init__(
        self,
        credentials: ManagementCredentials,
        *,
        session: requests.Session | None = None,
        token_cache: TokenCache | None = None,
        # Wall-clock: a cached token's expiry is also read by later processes (FileTokenCache).
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        max_backoff: float = 10.0,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.credentials = credentials
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = f"{SERVICE_NAME}-streams"
        self._cache = TOKEN_CACHE if token_cache is None else token_cache
        self._clock = clock
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff
        self._timeout = timeout
        # The shared retry policy: 429 only (Auth0's rate limit), Retry-After, else
        # X-RateLimit-Reset, else 1, 2, 4 s..., each wait capped at `max_backoff`.
        self._transport = HttpTransport(
            "auth0",
            RetryPolicy(
                max_attempts=max_attempts,
                backoff_base=0.5,
                backoff_cap=max_backoff,
                budget_seconds=None,
                statuses=frozenset({429}),
                retry_unreachable=False,
                jitter=False,
                max_wait=max_backoff,
            ),
            timeout=timeout,
            session=self._session,
            wait_hint=_rate_limit_wait,
            sleep=sleep,
        )
        self._secrets: set[str] = {
            s for s in (credentials.client_secret, credentials.token) if s is not None
        }

    def _retry_delay(self, response: requests.Response, attempt: int) -> float:
        """The wait before retrying a 429 outside the transport (a streamed answer): what
        Auth0 says, else 0.5, 1, 2 s..., capped like the transport's."""
        hint = _rate_limit_wait(response)
        delay = 0.5 * 2 ** (attempt - 1) if hint is None else hint
        return min(self._max_backoff, delay)

    def add_secret(self, value: str) -> None:
        """Scrub `value` from every error message this client raises (e.g. a webhook token)."""
        if value:
            self._secrets.add(value)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    # -- event streams -------------------------------------------------------------------

    def list_streams(self) -> list[dict[str, Any]]:
        """Every stream; follows `next` when the server pages the list."""
        streams: list[dict[str, Any]] = []
        params: dict[str, str] | None = None
        for _ in range(MAX_LIST_PAGES):
            data = self._json("GET", "/event-streams", scope=READ_STREAMS, params=params)
            if isinstance(data, list):
                return streams + [s for s in data if isinstance(s, dict)]
            page = data.get("eventStreams") if isinstance(data, dict) else None
            if not isinstance(page, list):
                raise ManagementApiError(
                    f"GET {API_PREFIX}/event-streams",
                    'unexpected answer: expected {"eventStreams": [...]} or a list',
                )
            streams.extend(s for s in page if isinstance(s, dict))
            next_page = data.get("next")
            if not next_page or not page:
                break
            params = {"from": str(next_page)}
        return streams

    def get_stream(self, stream_id: str) -> dict[str, Any]:
        return self._object("GET", f"/event-streams/{_seg(stream_id)}", scope=READ_STREAMS)

    def create_stream(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST the create body as given; 409 means the name is taken or the limit reached."""
        return self._object(
            "POST",
            "/event-streams",
            scope=CREATE_STREAMS,
            body=body,
            ok=(200, 201),
            conflict=(
                f"a stream named {body.get('name')!r} exists already, or the tenant has "
                "reached its event stream limit (list them, delete one or pick another name)"
            ),
        )

    def set_status(self, stream_id: str, status: str) -> dict[str, Any]:
        """PATCH `{"status": ...}`: enable or disable a stream."""
        return self._object(
            "PATCH",
            f"/event-streams/{_seg(stream_id)}",
            scope=UPDATE_STREAMS,
            body={"status": status},
        )

    def delete_stream(self, stream_id: str) -> None:
        self._request(
            "DELETE", f"/event-streams/{_seg(stream_id)}", scope=DELETE_STREAMS, ok=(200, 202, 204)
        )

    def send_test_event(self, stream_id: str, event_type: str) -> dict[str, Any]:
        """POST a test event (`a0purpose: "test"`) through the stream."""
        return self._object(
            "POST",
            f"/event-streams/{_seg(stream_id)}/test",
            scope=UPDATE_STREAMS,
            body={"event_type": event_type},
            ok=(200, 201, 202),
        )

    def list_deliveries(
        self,
        stream_id: str,
        *,
        event_types: Sequence[str] = (),
        date_from: str | None = None,
        date_to: str | None = None,
        limit: int = MAX_PAGE_SIZE,
    ) -> list[dict[str, Any]]:
        """Failed deliveries, oldest first as the API pages them, at most `limit` of them."""
        path = f"/event-streams/{_seg(stream_id)}/deliveries"
        params: dict[str, str] = {"statuses": DELIVERY_FAILED}
        if event_types:
            params["event_types"] = ",".join(event_types)
        if date_from:
            params["date_from"] = date_from
        if date_to:
            params["date_to"] = date_to
        deliveries: list[dict[str, Any]] = []
        seen: set[str] = set()
        while len(deliveries) < limit:
            take = min(MAX_PAGE_SIZE, limit - len(deliveries))
            data = self._json(
                "GET", path, scope=READ_DELIVERIES, params={**params, "take": str(take)}
            )
            page = data if isinstance(data, list) else None
            if page is None:
                raise ManagementApiError(f"GET {API_PREFIX}{path}", "unexpected answer: not a list")
            fresh = [d for d in page if isinstance(d, dict) and str(d.get("id")) not in seen]
            seen.update(str(d.get("id")) for d in fresh)
            deliveries.extend(fresh)
            # `from` is the id to continue from; a short page or no new id is the end.
            if len(page) < take or not fresh:
                break
            params["from"] = str(fresh[-1].get("id"))
        return deliveries[:limit]

    def redeliver_all(
        self,
        stream_id: str,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        event_types: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Ask Auth0 to redeliver every failed event matching the filters."""
        body: dict[str, Any] = {}
        if date_from:
            body["date_from"] = date_from
        if date_to:
            body["date_to"] = date_to
        body["statuses"] = [DELIVERY_FAILED]
        if event_types:
            body["event_types"] = list(event_types)
        return self._object(
            "POST",
            f"/event-streams/{_seg(stream_id)}/redeliver",
            scope=UPDATE_DELIVERIES,
            body=body,
            ok=(200, 202),
            conflict="one or more matching events is not in a state that allows redelivery",
        )

    def redeliver_event(self, stream_id: str, event_id: str) -> None:
        """Ask Auth0 to redeliver one failed event."""
        self._request(
            "POST",
            f"/event-streams/{_seg(stream_id)}/redeliver/{_seg(event_id)}",
            scope=UPDATE_DELIVERIES,
            ok=(200, 202, 204),
            conflict=f"event {event_id} is not in a state that allows redelivery",
        )

    # -- plumbing ------------------------------------------------------------------------

    def _object(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        conflict: str | None = None,
    ) -> dict[str, Any]:
        data = self._json(method, path, scope=scope, body=body, ok=ok, conflict=conflict)
        if not isinstance(data, dict):
            raise ManagementApiError(
                f"{method} {API_PREFIX}{path}", "unexpected answer: not a JSON object"
            )
        return data

    def _json(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        conflict: str | None = None,
    ) -> Any:
        response = self._request(
            method, path, scope=scope, params=params, body=body, ok=ok, conflict=conflict
        )
        if response.status_code == 204 or not response.content:
            return {}
        try:
            # Auth0 never returns a webhook secret; should any server do so, it stops here.
            return redact(response.json(), self._secrets)
        except ValueError as exc:
            raise ManagementApiError(
                f"{method} {API_PREFIX}{path}",
                f"answered {response.status_code} with a body that is not JSON",
                response.status_code,
            ) from exc

    def _request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        conflict: str | None = None,
    ) -> requests.Response:
        call = f"{method} {API_PREFIX}{path}"
        url = f"{self.credentials.base_url}{API_PREFIX}{path}"
        retried_token = False
        while True:
            token = self._token()
            response = self._send(
                call,
                method,
                url,
                params=params,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            # A cached token can be revoked or rotated early: fetch a new one, once.
            if response.status_code == 401 and not retried_token and not self.credentials.token:
                retried_token = True
                self._cache.drop(self._token_key())
                continue
            break
        if response.status_code in ok:
            return response
        raise self._api_error(call, scope, response, conflict)

    def _send(self, call: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One call under the shared retry policy; the last answer when 429 persists."""
        try:
            return self._transport.request(method, url, what=call, **kwargs)
        except SyncError as exc:
            last = last_answer(exc)
            if last is not None:
                return last  # still 429 after the attempts: the caller explains it
            cause = type(exc.__cause__).__name__ if exc.__cause__ else exc.reason
            raise ManagementApiError(
                call, self._scrub(f"cannot reach {self.credentials.base_url} ({cause})")
            ) from exc

    def _token_key(self) -> tuple[str, str, str]:
        return (
            self.credentials.base_url,
            self.credentials.client_id or "",
            self.credentials.audience,
        )

    def _token(self) -> str:
        """The ready token, or a cached client-credentials token, or a fresh one."""
        if self.credentials.token:
            return self.credentials.token
        key = self._token_key()
        cached = self._cache.get(key, self._clock())
        if cached:
            self._secrets.add(cached)
            return cached
        call = f"POST {TOKEN_PATH}"
        requested_at = self._clock()
        response = self._send(
            call,
            "POST",
            f"{self.credentials.base_url}{TOKEN_PATH}",
            json={
                "client_id": self.credentials.client_id,
                "client_secret": self.credentials.client_secret,
                "audience": self.credentials.audience,
                "grant_type": "client_credentials",
            },
        )
        if response.status_code != 200:
            detail = self._server_detail(response)
            if response.status_code in (401, 403):
                hint = (
                    f"check {Env.AUTH0_CLIENT_ID} and {Env.AUTH0_CLIENT_SECRET}, and that the "
                    f"application is authorized for the Management API "
                    f"(audience {self.credentials.audience}) with the event stream scopes"
                )
            else:
                hint = "the token endpoint refused the client-credentials grant"
            raise ManagementApiError(
                call,
                self._scrub(f"{response.status_code} {response.reason}: {hint} ({detail})"),
                response.status_code,
            )
        try:
            data = response.json()
            token = str(data["access_token"])
            expires_in = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ManagementApiError(call, "answered without access_token/expires_in") from exc
        self._secrets.add(token)
        # Renew a little early so a token never expires between our check and Auth0's.
        margin = min(60.0, expires_in / 10)
        self._cache.put(key, token, requested_at + expires_in - margin)
        return token

    def _api_error(
        self, call: str, scope: str, response: requests.Response, conflict: str | None
    ) -> ManagementApiError:
        status = response.status_code
        detail = self._server_detail(response)
        if status == 401:
            source = (
                f"{Env.AUTH0_MGMT_TOKEN} may have expired"
                if self.credentials.token
                else "a fresh client-credentials token was rejected too"
            )
            hint = (
                f"the token was rejected ({source}); this call needs a Management API token "
                f"(audience {self.credentials.audience}) with scope {scope}"
            )
        elif status == 403:
            hint = (
                f"missing scope {scope}: grant it to the application under "
                "Applications > APIs > Auth0 Management API > Machine to Machine Applications"
            )
        elif status == 409:
            hint = conflict or "conflict"
        elif status == 429:
            hint = f"rate limited: still 429 after {self._max_attempts} attempts"
        elif status == 404:
            hint = "not found"
        else:
            hint = "unexpected answer"
        message = f"{status} {response.reason}: {hint}"
        if detail:
            message += f" (Auth0 says: {detail})"
        return ManagementApiError(call, self._scrub(message), status)

    @staticmethod
    def _server_detail(response: requests.Response) -> str:
        """What Auth0 said, with any email, phone number or credential in it masked: the
        health check logs it, and an error about a user may quote the user."""
        try:
            data = response.json()
        except ValueError:
            return privacy.redact(response.text.strip())
        if isinstance(data, dict):
            for key in ("message", "error_description", "error"):
                if data.get(key):
                    return privacy.redact(str(data[key]))
        return ""

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)


def _seg(value: str) -> str:
    """An id as one URL path segment: it can never change which endpoint is called."""
    return quote(value, safe="")


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Retry-After (seconds or HTTP date), else Auth0's X-RateLimit-Reset (epoch seconds)."""
    delay = retry_after(response)
    reset = response.headers.get("X-RateLimit-Reset")
    if delay is None and reset:
        try:
            delay = max(0.0, float(reset) - time.time())
        except ValueError:
            delay = None
    return delay
