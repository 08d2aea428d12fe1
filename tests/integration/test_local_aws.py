"""`auth0-sync local-aws` as a user runs it: a real moto server process with the stack's
resources, export lines that work, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import boto3
import pytest

from auth0_sync.names import (
    DEFAULT_CRM_SECRET_NAME,
    STATE_TABLE_PK,
    Env,
)

pytestmark = pytest.mark.integration


def test_local_aws_serves_the_stacks_resources_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "auth0_sync_cli.main",
            "local-aws",
            "--port",
            "0",  # the OS picks a free port; the export lines say which
        ],
        env={**os.environ, Env.CRM_API_TOKEN: "tkn"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        exports: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:  # it ended before it was ready
                break
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                exports[name] = value
            if line.startswith("Ctrl-C"):
                break
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", exports["AWS_ENDPOINT_URL"])
        session = boto3.session.Session(
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            region_name=exports["AWS_DEFAULT_REGION"],
        )
        endpoint = exports["AWS_ENDPOINT_URL"]
        dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        state = dynamodb.describe_table(TableName=exports[Env.STATE_TABLE])["Table"]
        assert state["KeySchema"] == [{"AttributeName": STATE_TABLE_PK, "KeyType": "HASH"}]
        assert state["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        # The state de-duplicates: the stack's one table, and no other.
        assert dynamodb.list_tables()["TableNames"] == [exports[Env.STATE_TABLE]]
        sqs = session.client("sqs", endpoint_url=endpoint)
        attributes = sqs.get_queue_attributes(QueueUrl=exports[Env.DLQ_URL], AttributeNames=["All"])
        assert attributes["Attributes"]["MessageRetentionPeriod"] == str(14 * 24 * 3600)
        secrets = session.client("secretsmanager", endpoint_url=endpoint)
        secret = secrets.get_secret_value(SecretId=exports[Env.CRM_TOKEN_SECRET_ARN])
        assert secret["Name"] == DEFAULT_CRM_SECRET_NAME
        assert secret["SecretString"] == "tkn"
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "local AWS stopped." in out


def test_local_aws_on_a_busy_port_exits_2_at_once_naming_the_port_flag() -> None:
    # It used to wait forever: moto's server thread died on the bind, unseen.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "auth0_sync_cli.main", "local-aws", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"auth0-sync local-aws: error: port {port} on 127.0.0.1 is already in use (another "
        "server, or one still running): stop it, or pass another --port (--port 0 picks a "
        "free one)\n"
    )
