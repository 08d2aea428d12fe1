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

import boto3
import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from auth0_sync import lambda_app
from auth0_sync.names import SERVICE_NAME, Env
from auth0_sync_cli.local_aws import LocalResources
from tests.builders import at, created
from tests.integration.helpers import dlq_messages, invoke

pytestmark = pytest.mark.integration

EMAIL, PHONE, TOKEN = "ada.secret@example.com", "+447700900123", "sk_live_5ecr3tT0ken"
NAME = "Zebulon Quarternight"  # shaped like nothing a pattern finds: only the values we sent
HOSTILE = (EMAIL, PHONE, TOKEN, "ada.secret", "7700900123", NAME)


class EchoingCrm(BaseHTTPRequestHandler):
    """Answers every request with `status` and a message quoting what it was sent, in the
    error shape of the destination it plays (`dialect`): the generic contract's
    `{error, message}`, HubSpot's `{status, message, category}`, or Salesforce's list of
    `{errorCode, message, fields}` (its OAuth token endpoint answers, so data calls run)."""

    status = 422
    dialect = "rest"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode("utf-8", "replace") + " " + self.path
        echo = f"cannot store {sent} (token {TOKEN}, Bearer {TOKEN})"
        status = self.status
        payload: Any = {"error": "rejected", "message": echo}
        if self.dialect == "hubspot":
            payload = {"status": "error", "message": echo, "category": "VALIDATION_ERROR"}
        elif self.dialect == "salesforce":
            if self.path.startswith("/services/oauth2/token"):
                status = 200
                payload = {
                    "access_token": "00Dxx!session",
                    "instance_url": f"http://{self.headers.get('Host')}",
                    "token_type": "Bearer",
                    "issued_at": "1700000000000",
                }
            else:
                payload = [{"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": echo,
                            "fields": ["Email"]}]  # fmt: skip
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 429:
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


SECRETS = {
    "rest": "local-crm-token",
    "hubspot": json.dumps({"token": "pat-na1-hostile"}),
    "salesforce": json.dumps({"client_id": "3MVG9hostile", "client_secret": "hostile-secret"}),
}


@pytest.mark.parametrize("dialect", ["rest", "hubspot", "salesforce"])
@pytest.mark.parametrize("status", [400, 401, 409, 422, 500, 503])
def test_what_a_crm_echoes_never_reaches_logs_metrics_or_dlq_attributes(
    sync_env: LocalResources,
    echoing_crm: ThreadingHTTPServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service_logs: Rendered,
    status: int,
    dialect: str,
) -> None:
    EchoingCrm.status, EchoingCrm.dialect = status, dialect
    boto3.client("secretsmanager").put_secret_value(
        SecretId=sync_env.secret_arn, SecretString=SECRETS[dialect]
    )
    monkeypatch.setenv(Env.CRM_TYPE, dialect)
    monkeypatch.setenv(Env.CRM_BASE_URL, f"http://127.0.0.1:{echoing_crm.server_address[1]}")
    monkeypatch.setenv(Env.CRM_RETRY_BUDGET_SECONDS, "0.5")
    lambda_app.service.cache_clear()
    event = created("auth0|hostile", at(0), email=EMAIL, name=NAME, phone_number=PHONE)

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
