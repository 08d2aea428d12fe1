"""`auth0-sync local-aws`: moto's server on loopback with the resources the stack creates.

Same table names, keys, TTL attribute, queue and secret as the stack, from auth0_sync.names,
so the handlers' code runs unchanged against it through boto3's AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from auth0_sync.names import (
    DEFAULT_CRM_SECRET_NAME,
    DEFAULT_DLQ_NAME,
    DEFAULT_STATE_TABLE,
    LOCAL_AWS_PORT,
    LOCAL_CRM_TOKEN,
    LOCAL_REGION,
    STATE_TABLE_PK,
    STATE_TTL_ATTRIBUTE,
    Env,
)
from auth0_sync_cli.argtypes import whole_number
from auth0_sync_cli.exits import cannot_listen
from auth0_sync_cli.local_mode import AWS_ENDPOINT_ENV
from auth0_sync_cli.secrets import secret_from
from auth0_sync_cli.signals import held_stop_signals

DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# moto accepts any credentials; these keep boto3 from looking for real ones.
MOTO_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class LocalResources:
    endpoint_url: str
    state_table: str
    dlq_url: str
    secret_arn: str

    def environment(self) -> dict[str, str]:
        """What boto3 and the sync need to use these resources."""
        return {
            AWS_ENDPOINT_ENV: self.endpoint_url,
            "AWS_ACCESS_KEY_ID": MOTO_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": MOTO_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            Env.STATE_TABLE: self.state_table,
            Env.DLQ_URL: self.dlq_url,
            Env.CRM_TOKEN_SECRET_ARN: self.secret_arn,
        }


def create_resources(endpoint_url: str | None, crm_token: str = LOCAL_CRM_TOKEN) -> LocalResources:
    """Create the tables, the DLQ and the CRM-token secret (idempotent: reuses existing ones)."""
    session = boto3.session.Session(
        aws_access_key_id=MOTO_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=MOTO_CREDENTIALS["aws_secret_access_key"],
        region_name=LOCAL_REGION,
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    existing = set(dynamodb.list_tables()["TableNames"])
    if DEFAULT_STATE_TABLE not in existing:
        dynamodb.create_table(
            TableName=DEFAULT_STATE_TABLE,
            KeySchema=[{"AttributeName": STATE_TABLE_PK, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": STATE_TABLE_PK, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # As in the stack: deleted users' tombstones age out.
        dynamodb.update_time_to_live(
            TableName=DEFAULT_STATE_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": STATE_TTL_ATTRIBUTE},
        )
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    dlq_url = sqs.create_queue(
        QueueName=DEFAULT_DLQ_NAME,
        Attributes={
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    secrets = session.client("secretsmanager", endpoint_url=endpoint_url)
    try:
        secret_arn = secrets.describe_secret(SecretId=DEFAULT_CRM_SECRET_NAME)["ARN"]
        secrets.put_secret_value(SecretId=secret_arn, SecretString=crm_token)
    except secrets.exceptions.ResourceNotFoundException:
        secret_arn = secrets.create_secret(Name=DEFAULT_CRM_SECRET_NAME, SecretString=crm_token)[
            "ARN"
        ]
    return LocalResources(
        endpoint_url=endpoint_url or "",
        state_table=DEFAULT_STATE_TABLE,
        dlq_url=dlq_url,
        secret_arn=secret_arn,
    )


class LocalAws:
    """moto's server on 127.0.0.1 (port 0 = any free port), with the stack's resources created."""

    def __init__(self, port: int = LOCAL_AWS_PORT, crm_token: str = LOCAL_CRM_TOKEN) -> None:
        self.port = port
        self.crm_token = crm_token
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.resources: LocalResources | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalResources:
        """Bind (OSError if the port is taken), serve from a thread, create the resources."""
        # moto's ThreadedMotoServer binds in its thread: a taken port kills that thread and
        # leaves start() waiting forever. Binding here makes it an OSError for the caller.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            # werkzeug serves a duplicate of this socket; ours is closed below either way.
            server = make_server(
                "127.0.0.1", self.port, moto_app(), threaded=True, fd=listener.fileno()
            )
        finally:
            listener.close()
        self.port = int(server.port)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        try:
            self.resources = create_resources(self.endpoint_url, self.crm_token)
        except BaseException:
            self.stop()
            raise
        return self.resources

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> LocalResources:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def moto_app() -> Any:
    """moto's WSGI app serving every service, as `moto_server` runs it."""
    # moto serves through werkzeug, which logs every request line by default.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return DomainDispatcherApplication(create_backend_app)


def run(args: argparse.Namespace) -> int:
    token = secret_from(
        args.crm_token_file,
        flag="--crm-token-file",
        variable=Env.CRM_API_TOKEN,
        what="the CRM token",
        default=LOCAL_CRM_TOKEN,
    )
    local = LocalAws(args.port, token or LOCAL_CRM_TOKEN)
    # Stop signals are held before anything starts: a Ctrl-C at any moment after the
    # "Ctrl-C to stop" line is waited for, never raised in the middle of start-up.
    with held_stop_signals() as wait_for_stop:
        try:
            resources = local.start()
        except OSError as exc:
            raise cannot_listen("127.0.0.1", args.port, exc) from exc
        try:
            print(f"local AWS (moto) on {local.endpoint_url}; use it with:")
            for name, value in resources.environment().items():
                print(f"export {name}={value}")
            print("Ctrl-C to stop.", flush=True)
            wait_for_stop()
        finally:
            local.stop()
    print("local AWS stopped.")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "local-aws",
        help="serve DynamoDB, SQS and Secrets Manager on loopback (moto), with the stack's "
        "tables, queue and secret",
        description="Serve the AWS APIs the sync uses on 127.0.0.1 (moto), with the "
        "stack's tables, DLQ and CRM-token secret created, until Ctrl-C. It prints the "
        "export lines that point boto3 and the sync at it.",
        epilog="examples:\n"
        "  auth0-sync local-aws            # then run its export lines in another shell\n"
        "  auth0-sync local-aws --port 0   # any free port",
    )
    parser.add_argument(
        "--port",
        type=whole_number(0, 65535, what="a port number"),
        default=LOCAL_AWS_PORT,
        help="0 = any free port (default %(default)s, LocalStack's)",
    )
    parser.add_argument(
        "--crm-token-file",
        metavar="FILE",
        help=f"read the CRM token to store in the secret from FILE (default: "
        f"${Env.CRM_API_TOKEN}, else the local token); never on the command line",
    )
    parser.set_defaults(func=run)
