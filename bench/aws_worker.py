"""The fresh process of the AWS-requests figure (`bench/aws_requests.py`).

`python -m bench.aws_worker EVENTS OUT [COUNTS_URL]` runs each event of EVENTS (a JSON list)
through its Lambda handler, one after the other, and writes per event its type, outcome,
wall time and, with COUNTS_URL (the counting proxy's `/_bench/counts`), the AWS requests
that reached local AWS while it ran. It imports only what the old flow's tree also has
(`auth0_sync.routing`, `auth0_sync.events`, `auth0_sync_cli.runner`), so the same worker
runs either flow.
"""

from __future__ import annotations

import http.client
import importlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def worker(events_path: Path, out: Path, counts_url: str) -> None:
    """Run each event through its handler; with `counts_url`, read the proxy's counts after it.

    Imports only what the old flow's tree also has (`auth0_sync.routing`, `auth0_sync.events`,
    `auth0_sync_cli.runner`), so the same worker runs either flow.
    """
    from auth0_sync.events import identity_of
    from auth0_sync.routing import route_for
    from auth0_sync_cli.runner import LocalContext, function_name_for

    handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}

    def handler_for(raw: dict[str, Any]) -> Callable[[dict[str, Any], Any], Any]:
        route = route_for(identity_of(raw)["event_type"] or "")
        module = route.module if route else "auth0_sync.handlers.user_updated"
        if module not in handlers:
            handlers[module] = importlib.import_module(module).handler
        return handlers[module]

    where = urlsplit(counts_url)
    proxy = http.client.HTTPConnection(where.netloc, timeout=60) if counts_url else None

    def counts() -> Counter[str]:
        assert proxy is not None
        proxy.request("GET", where.path)
        return Counter(json.loads(proxy.getresponse().read()))

    records: list[dict[str, Any]] = []
    before = counts() if counts_url else Counter()
    for raw in json.loads(events_path.read_text()):
        handler = handler_for(raw)
        started = time.perf_counter()
        try:
            result = handler(raw, LocalContext(function_name_for(raw)))
            outcome = f"{result.get('status')}:{result.get('reason')}"
        except Exception as exc:  # a Lambda-level failure: Lambda would retry it later
            outcome = f"raised:{type(exc).__name__}"
        seconds = time.perf_counter() - started
        after = counts() if counts_url else Counter()
        records.append(
            {
                "type": str(raw.get("detail", {}).get("type")),
                "outcome": outcome,
                "seconds": seconds,
                "requests": dict(after - before),
            }
        )
        before = after
    out.write_text(json.dumps(records))


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
