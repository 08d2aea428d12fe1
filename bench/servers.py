"""The peers every figure runs against: `auth0-sync local-aws` and `auth0-sync crm-server`.

Both run as their own processes, as a user starts them, so the process being measured holds
only the sync: their CPU does not show in its profile nor compete for its GIL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import requests

from auth0_sync.names import LOCAL_CRM_TOKEN, CrmType, Env
from auth0_sync.settings import Settings
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from auth0_sync_cli.local_aws import LocalResources, create_resources
from auth0_sync_cli.local_mode import AWS_ENDPOINT_ENV
from bench.aws_proxy import READY_LINE as PROXY_READY_LINE

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "Ctrl-C to stop."
START_TIMEOUT_SECONDS = 60.0


# Each server binds port 0 and says where it listens: no port probed first, so none can be
# taken by another process between the probe and the bind.
AWS_URL_LINE = re.compile(r"^export AWS_ENDPOINT_URL=http://127\.0\.0\.1:(\d+)$", re.MULTILINE)
CRM_URL_LINE = re.compile(r"crm-server listening on http://127\.0\.0\.1:(\d+) ")
PROXY_PORT_LINE = re.compile(r" on 127\.0\.0\.1:(\d+), forwarding")


def cli(*args: str) -> list[str]:
    """argv running the `auth0-sync` CLI with this interpreter."""
    return [sys.executable, "-m", "auth0_sync_cli.main", *args]


def functions_at(commit: str, workdir: Path, name: str) -> Path | str:
    """`functions/` of an earlier commit (a figure's baseline code, run against the same
    peers) unpacked under `workdir / name`, or why it could not be (a shallow clone)."""
    target = workdir / name
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "functions"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        return f"git archive {commit[:7]} failed: {archive.stderr.decode().strip()}"
    target.mkdir(parents=True, exist_ok=True)
    tar_path = workdir / f"{name}.tar"
    tar_path.write_bytes(archive.stdout)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target / "functions"


def _wait_for(what: str, ready: Any, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start; its output:\n{log.read_text()}")
        time.sleep(0.05)


def _port_in(log: Path, line: re.Pattern[str]) -> int:
    found = line.search(log.read_text())
    assert found is not None, f"no port in {log}"
    return int(found.group(1))


class CrmAdmin:
    """The reference CRM's admin endpoints over HTTP (`/_admin/...`)."""

    def __init__(self, base_url: str, token: str = LOCAL_CRM_TOKEN) -> None:
        self.base_url = base_url
        self.token = token
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, self.base_url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """Contract requests counted by the server: total, by method, by status."""
        result: dict[str, Any] = self._call("GET", "/_admin/stats")
        return result

    def contacts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/_admin/contacts")
        return result

    def reset(self) -> None:
        """No contacts, no counts, no faults."""
        self._call("POST", "/_admin/reset")
        self.set_rate_limit(None)

    def reset_stats(self) -> None:
        self._call("POST", "/_admin/stats/reset")

    def set_rate_limit(self, rps: float | None) -> None:
        self._call("POST", "/_admin/rate-limit", {"rps": rps})

    def seed(self, contacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Contacts that exist before the stream (created through the contract, then the
        counts are reset so they do not count against either flow); the contacts made."""
        made = [self._call("POST", "/contacts", fields) for fields in contacts]
        self.reset_stats()
        return made


@dataclass
class Peers:
    """local-aws and the reference CRM, each in its own process on a free loopback port."""

    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-")))
    aws_port: int = 0  # known once started
    crm_port: int = 0
    proxy_port: int = 0
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    resources: LocalResources | None = None

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def proxy_url(self) -> str:
        """The counting proxy in front of local-aws (`bench/aws_proxy.py`)."""
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def crm_url(self) -> str:
        return f"http://127.0.0.1:{self.crm_port}"

    @property
    def crm(self) -> CrmAdmin:
        return CrmAdmin(self.crm_url)

    def _spawn(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self._processes.append(process)
        return process, log

    def start(self) -> Peers:
        aws, aws_log = self._spawn("local-aws", cli("local-aws", "--port", "0"))
        crm, crm_log = self._spawn("crm-server", cli("crm-server", "--port", "0"))
        _wait_for("local-aws", lambda: READY_LINE in aws_log.read_text(), aws, aws_log)
        # The banner comes once the server listens.
        _wait_for("crm-server", lambda: CRM_URL_LINE.search(crm_log.read_text()), crm, crm_log)
        self.aws_port = _port_in(aws_log, AWS_URL_LINE)
        self.crm_port = _port_in(crm_log, CRM_URL_LINE)
        proxy, proxy_log = self._spawn(
            "aws-proxy", [sys.executable, "-m", "bench.aws_proxy", "0", self.aws_url]
        )
        _wait_for("aws-proxy", lambda: PROXY_READY_LINE in proxy_log.read_text(), proxy, proxy_log)
        self.proxy_port = _port_in(proxy_log, PROXY_PORT_LINE)
        # Idempotent: finds the resources local-aws created and returns their names.
        self.resources = create_resources(self.aws_url)
        return self

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
        # Logs, event files (10k events: ~30 MB) and profiles of this run only.
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Peers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def reset_aws(self) -> LocalResources:
        """Empty tables and queue: moto's own reset, then the stack's resources again."""
        requests.post(self.aws_url + "/moto-api/reset", timeout=60).raise_for_status()
        self.resources = create_resources(self.aws_url)
        return self.resources

    def reset(self) -> None:
        """A clean CRM (no contacts, counts or faults) and clean AWS state."""
        self.crm.reset()
        self.reset_aws()

    def aws_environment(self) -> dict[str, str]:
        """What boto3 and the handlers need to use local-aws (as `local-aws` prints it)."""
        assert self.resources is not None, "start() first"
        return self.resources.environment()

    def handler_environment(self) -> dict[str, str]:
        """The environment the stack gives a handler, pointed at these peers."""
        env = {k: v for k, v in os.environ.items() if k != Env.CRM_API_TOKEN}
        env.update(self.aws_environment())
        env[Env.CRM_BASE_URL] = self.crm_url
        env["POWERTOOLS_TRACE_DISABLED"] = "1"
        return env

    def counted_handler_environment(self) -> dict[str, str]:
        """The handler environment with boto3 sent through the counting proxy."""
        env = self.handler_environment()
        env[AWS_ENDPOINT_ENV] = self.proxy_url
        return env

    def aws_counts(self) -> dict[str, int]:
        """AWS requests the proxy forwarded since its last reset, by `Service Operation answer`."""
        response = requests.get(self.proxy_url + "/_bench/counts", timeout=60)
        response.raise_for_status()
        counts: dict[str, int] = response.json()
        return counts

    def reset_aws_counts(self) -> None:
        requests.post(self.proxy_url + "/_bench/reset", timeout=60).raise_for_status()

    def settings(self, *, aws: bool = True) -> Settings:
        """Sync settings for an in-process run: the CRM's local token, local-aws tables."""
        if not aws:
            return Settings(crm_base_url=self.crm_url, crm_api_token=LOCAL_CRM_TOKEN)
        assert self.resources is not None, "start() first"
        return Settings(
            crm_base_url=self.crm_url,
            crm_api_token=LOCAL_CRM_TOKEN,
            state_table=self.resources.state_table,
            dlq_url=self.resources.dlq_url,
        )

    def use_aws_in_this_process(self) -> None:
        """Point boto3's default session at local-aws (clients are created lazily)."""
        os.environ.update(self.aws_environment())


# What the batch benches (bulk, replay_batches) share: a destination whose requests are
# counted by the CRM itself, pointed at by the handlers' environment, and a command run.


@dataclass
class Destination:
    """A CRM a bench writes to: the contacts it holds and the requests it counted. `fake` is
    the vendor fake started for it (None: the reference CRM peer), `secret` its credentials."""

    read: Callable[[], list[dict[str, Any]]]
    requests: Callable[[], int]
    fake: FakeHubSpot | FakeSalesforce | None = None
    secret: str = ""

    def stop(self) -> None:
        if self.fake is not None:
            self.fake.stop()


def destination(peers: Peers, crm_type: CrmType) -> Destination:
    """The reference CRM peer, or a vendor fake started for this run."""
    if crm_type is CrmType.REST:
        crm = peers.crm
        return Destination(crm.contacts, lambda: int(crm.stats()["total"]))
    if crm_type is CrmType.HUBSPOT:
        # A window wide enough not to pace: requests are counted here, not timed.
        hubspot = FakeHubSpot(window_calls=1_000_000, window_ms=1000).start()
        return Destination(
            lambda: [hubspot_contact(r) for r in hubspot.contacts()],
            lambda: len(hubspot.requests),
            hubspot,
            json.dumps({"token": hubspot.token}),
        )
    org = FakeSalesforce(daily_limit=10_000_000).start()
    return Destination(
        lambda: [salesforce_contact(r) for r in org.contacts()],
        lambda: int(org.api_used),
        org,
        json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
    )


def local_client(service: str, env: dict[str, str]) -> Any:
    """A boto3 client of local-aws, as the handlers' environment `env` points at it."""
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def point_at(env: dict[str, str], crm_type: CrmType, target: Destination) -> None:
    """Points the handlers' environment at a vendor fake (its credentials in the secret)."""
    if target.fake is None:
        return
    local_client("secretsmanager", env).put_secret_value(
        SecretId=env[Env.CRM_TOKEN_SECRET_ARN], SecretString=target.secret
    )
    env[Env.CRM_TYPE] = str(crm_type)
    env[Env.CRM_BASE_URL] = target.fake.base_url


def run_command(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """(seconds, JSON report) of a fresh `auth0-sync ... --json` process; exit 1 (some
    events failed) is a result, any other failure is the bench's."""
    started = time.perf_counter()
    done = subprocess.run(
        cli(*args, "--json"),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)
