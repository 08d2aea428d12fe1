"""No email, phone number or token reaches a log line, an EMF metric or a DLQ attribute,
whatever a CRM echoes back. The CRM here is a real HTTP server on loopback that puts the
values it was sent into every error it answers, as some CRMs do."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from auth0_sync import lambda_app
from auth0_sync.names import SERVICE_NAME, Env
from auth0_sync_cli.local_aws import LocalResources
from tests.builders import at, created
from tests.integration.helpers import dlq_messages, invoke

pytestmark = pytest.mark.integration

EMAIL, PHONE, TOKEN = "ada.secret@example.com", "+447700900123", "sk_live_5ecr3tT0ken"
HOSTILE = (EMAIL, PHONE, TOKEN, "ada.secret", "7700900123")


class EchoingCrm(BaseHTTPRequestHandler):
    """Answers every request with `status` and a message quoting what it was sent."""

    status = 422

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode("utf-8", "replace")
        body = json.dumps(
            {
                "error": "rejected",
                "message": f"cannot store {sent} (token {TOKEN}, Bearer {TOKEN})",
            }
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class Rendered(logging.Handler):
    """Every record of the service's loggers, rendered by Powertools' own formatter (caught
    at the logger: pytest's capture misses a logger whose stream was bound earlier)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(LambdaPowertoolsFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def service_logs() -> Iterator[Rendered]:
    rendered = Rendered()
    root = logging.getLogger(SERVICE_NAME)
    root.addHandler(rendered)
    yield rendered
    root.removeHandler(rendered)


@pytest.fixture
def echoing_crm() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingCrm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [400, 401, 409, 422, 500, 503])
def test_what_a_crm_echoes_never_reaches_logs_metrics_or_dlq_attributes(
    sync_env: LocalResources,
    echoing_crm: ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service_logs: Rendered,
    status: int,
) -> None:
    EchoingCrm.status = status
    monkeypatch.setenv(Env.CRM_BASE_URL, f"http://127.0.0.1:{echoing_crm.server_address[1]}")
    monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "0.5")
    lambda_app.service.cache_clear()
    event = created("auth0|hostile", at(0), email=EMAIL, name="Ada", phone_number=PHONE)

    raised = ""
    try:
        invoke(event, timeout_seconds=3)
    except Exception as exc:  # a transient failure is raised for Lambda to retry
        raised = str(exc)  # what Lambda writes to its log and the on-failure record
    assert not any(value in raised for value in HOSTILE), raised

    printed = capsys.readouterr()
    logs_and_metrics = printed.out + printed.err + "\n".join(service_logs.lines)
    assert logs_and_metrics.strip(), "the handler logged nothing: the test would prove nothing"
    for value in HOSTILE:
        assert value not in logs_and_metrics
    for message in dlq_messages(sync_env):
        for name, value in message["attributes"].items():
            assert not any(v in value for v in HOSTILE), (name, value)
