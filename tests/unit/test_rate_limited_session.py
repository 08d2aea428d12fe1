"""The CLI's rate-limited session (`backfill`, `reconcile --fix`, `catch-up`): requests'
proxies from the environment, read once per host instead of on every request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from auth0_sync.replay.pacing import TokenBucket
from auth0_sync_cli.crm_pacing import RateLimitedSession


class Proxy(BaseHTTPRequestHandler):
    """An HTTP proxy that answers every request itself and keeps its request line (a
    proxied request names the whole URL)."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recording", (Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_the_environments_proxy_is_used_and_read_once_per_host(
    proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = proxy
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    session = RateLimitedSession(TokenBucket(None))

    session.get("http://crm.invalid/contacts/1", timeout=5).raise_for_status()
    monkeypatch.delenv("HTTP_PROXY")  # read once: the session keeps what it read
    session.get("http://crm.invalid/contacts/2", timeout=5).raise_for_status()

    assert seen == ["http://crm.invalid/contacts/1", "http://crm.invalid/contacts/2"]
    assert session.bucket.taken == 2
