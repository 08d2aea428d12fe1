"""A counting reverse proxy in front of local-aws: every AWS request that reaches it, by operation.

`python -m bench.aws_proxy PORT UPSTREAM` listens on 127.0.0.1:PORT and forwards each request
unchanged to UPSTREAM (moto's server), then answers with moto's answer. It counts the requests
as AWS sees them, whatever client sent them: by service and operation (`X-Amz-Target` for the
JSON protocols DynamoDB, SQS and Secrets Manager use; `Action=` for the query protocol) and by
answer (`ok`, or the error type moto returned, e.g. `ConditionalCheckFailedException`).

Its own endpoints, not forwarded and not counted: `GET /_bench/counts` (the counts as JSON,
`{"DynamoDB UpdateItem ok": 3, ...}`), `POST /_bench/reset` (zero them).

It runs in its own process so its work does not compete with the measured process's GIL.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

READY_LINE = "aws-proxy: listening"
SERVICES = {"DynamoDB_20120810": "DynamoDB", "AmazonSQS": "SQS", "secretsmanager": "SecretsManager"}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def operation_of(headers: Any, body: bytes) -> str:
    """`Service Operation` of one AWS request, from its target header or its query action."""
    target = headers.get("X-Amz-Target")
    if target and "." in target:
        prefix, operation = target.rsplit(".", 1)
        return f"{SERVICES.get(prefix, prefix)} {operation}"
    action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return f"query {action[0]}" if action else "other"


def answer_of(status: int, body: bytes) -> str:
    """`ok`, or the error type in a JSON error answer (`ConditionalCheckFailedException`)."""
    if status < 400:
        return "ok"
    try:
        kind = str(json.loads(body).get("__type", ""))
    except (ValueError, AttributeError):
        kind = ""
    return kind.rsplit("#", 1)[-1] or f"HTTP {status}"


class Counts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def make_handler(upstream: str, counts: Counts) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)
    local = threading.local()

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in HOP_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/_bench/"):
                self._admin()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            headers["Host"] = target.netloc
            for attempt in (1, 2):  # a kept-alive upstream connection may have been closed
                connection = getattr(local, "connection", None)
                if connection is None:
                    connection = http.client.HTTPConnection(target.netloc, timeout=120)
                    local.connection = connection
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    answer = response.read()
                    break
                except (ConnectionError, http.client.HTTPException):
                    connection.close()
                    local.connection = None
                    if attempt == 2:
                        raise
            if not self.path.startswith("/moto-api"):
                operation = operation_of(self.headers, body)
                counts.add(f"{operation} {answer_of(response.status, answer)}")
            self._reply(response.status, response.getheaders(), answer)

        def _admin(self) -> None:
            if self.path == "/_bench/counts":
                snapshot = json.dumps(counts.snapshot()).encode()
                self._reply(200, [("Content-Type", "application/json")], snapshot)
            elif self.path == "/_bench/reset":
                counts.reset()
                self._reply(200, [("Content-Type", "application/json")], b"{}")
            else:
                self._reply(404, [], b"")

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    return Proxy


def serve(port: int, upstream: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(upstream, Counts()))
    server.daemon_threads = True
    bound = server.server_address[1]  # port 0: the one the OS gave
    print(f"{READY_LINE} on 127.0.0.1:{bound}, forwarding to {upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
