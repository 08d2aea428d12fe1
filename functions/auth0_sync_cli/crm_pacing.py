"""The destination's adapter for a CLI bulk path, paced: every HTTP request it sends to the
CRM (retries included, a batch request as one) takes a token of the run's `--rate` first
(`backfill`, `reconcile --fix`, `catch-up`, and `replay` and `redrive` when batched)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from auth0_sync.destinations import Listing
from auth0_sync.destinations.factory import build_crm
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync.runtime import destination_secret
from auth0_sync.settings import Settings
from auth0_sync_cli.local_mode import check_crm_url

if TYPE_CHECKING:
    from requests.sessions import _Settings  # the stubs' type of the merged settings


class RateLimitedSession(requests.Session):
    """A requests session whose every request (retries included) takes a token first."""

    def __init__(self, bucket: TokenBucket, pool_size: int = 32) -> None:
        super().__init__()
        self.bucket = bucket
        self._environment: dict[tuple[str, str, str, str], _Settings] = {}
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        self.bucket.take()
        return super().request(method, url, *args, **kwargs)

    def merge_environment_settings(
        self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> _Settings:
        """requests' own merge of the environment (proxies, NO_PROXY, the CA bundle), done
        once per host and arguments: requests reads every environment variable on each
        request, which was half of a request's CPU in a batched backfill's hundreds of
        users in flight. A command's environment does not change while it runs."""
        parts = urlsplit(url.decode() if isinstance(url, bytes) else str(url or ""))
        key = (
            parts.scheme,
            parts.netloc,
            repr(sorted((proxies or {}).items())),
            repr((stream, verify, cert)),
        )
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}  # a copy: requests may change it


def crm_client(settings: Settings, bucket: TokenBucket) -> Listing:
    """The configured destination's adapter (CRM_TYPE), every request of which (retries
    included) takes from `bucket`."""
    check_crm_url(settings.crm_base_url)
    return build_crm(settings, destination_secret(settings), session=RateLimitedSession(bucket))
