"""`auth0-sync streams` against a fake Auth0 Management API served on loopback.

Each test drives the CLI through `main([...])` and asserts the exact requests the server
received (method, path, query, body, bearer token) and what the user sees.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from auth0_sync.names import Env
from auth0_sync.streams.client import (
    TOKEN_CACHE,
    ManagementClient,
    ManagementCredentials,
    TokenCache,
)
from auth0_sync_cli.main import main
from tests.cli_support import auth0_env
from tests.fakes.auth0_mgmt import ALL_SCOPES, CLIENT_ID, CLIENT_SECRET, FakeAuth0

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
REGION = "eu-west-1"
WEBHOOK_TOKEN = "whk-3f9a1c7e5b2d8a64"


@pytest.fixture
def fake() -> Iterator[FakeAuth0]:
    with FakeAuth0() as server:
        yield server


@pytest.fixture(autouse=True)
def token_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test its own cache folder: each fake is a new tenant (and may reuse a port), so
    no token carries over between tests, and none lands in the real ~/.cache."""
    monkeypatch.setenv(Env.XDG_CACHE_HOME, str(tmp_path / "cache"))
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN_FILE, raising=False)
    TOKEN_CACHE.clear()
    yield tmp_path / "cache" / "auth0-sync"
    TOKEN_CACHE.clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process moto for `streams health`, which reads the partner event source."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def source_of(stream: dict[str, Any]) -> str:
    name: str = stream["destination"]["configuration"]["aws_partner_event_source"]
    return name


def associate(stream: dict[str, Any]) -> str:
    """The partner source Auth0 creates for an EventBridge stream, ACTIVE (a bus associated)."""
    name = source_of(stream)
    events = boto3.client("events", region_name=REGION)
    events.create_partner_event_source(Name=name, Account=ACCOUNT)
    assert events.describe_event_source(Name=name)["State"] == "ACTIVE"
    return name


@pytest.fixture
def env(fake: FakeAuth0, monkeypatch: pytest.MonkeyPatch) -> FakeAuth0:
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.setenv(Env.AUTH0_CLIENT_ID, CLIENT_ID)
    monkeypatch.setenv(Env.AUTH0_CLIENT_SECRET, CLIENT_SECRET)
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["streams", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["streams", *argv])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def bearer(fake: FakeAuth0) -> str:
    [token] = [t for t in fake.tokens if t.startswith("cc-")]
    return f"Bearer {token}"


def create_eventbridge(capsys: pytest.CaptureFixture[str], name: str = "crm-sync") -> str:
    code, out, _ = run(
        capsys,
        "create",
        "--name",
        name,
        "--eventbridge",
        "--aws-account",
        ACCOUNT,
        "--aws-region",
        REGION,
        "--json",
    )
    assert code == 0
    stream_id: str = json.loads(out)["stream"]["id"]
    return stream_id


# -- the seed flow: create (EventBridge) -> list -> enable ---------------------------------


def test_seed_flow_sends_exactly_the_seed_requests(
    env: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        "create",
        "--name",
        "my-event-stream-1",
        "--eventbridge",
        "--aws-account",
        ACCOUNT,
        "--aws-region",
        REGION,
        "--type",
        "user.created",
    )
    assert (code, err) == (0, "")
    [stream] = env.streams.values()
    source = stream["destination"]["configuration"]["aws_partner_event_source"]
    assert f"aws_partner_event_source: {source}" in out
    # The deploy that creates the bus for the new source: without createEventBus=true the
    # stack would import a bus that does not exist.
    assert (
        f"  AWS_REGION={REGION} make deploy CDK_ARGS='-c auth0EventSourceName={source} "
        "-c createEventBus=true'\n" in out
    )
    assert f"  auth0-sync streams enable {stream['id']}" in out

    code, out, _ = run(capsys, "list")
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "NAME", "STATUS", "DESTINATION", "EVENT", "TYPES"]
    assert out.splitlines()[1].split() == [
        stream["id"],
        "my-event-stream-1",
        "disabled",
        "eventbridge",
        f"{ACCOUNT}/{REGION}",
        "user.created",
    ]

    code, out, _ = run(capsys, "enable", stream["id"])
    assert code == 0
    assert out == f"Event stream {stream['id']} 'my-event-stream-1' is now enabled.\n"
    assert env.streams[stream["id"]]["status"] == "enabled"

    # One client-credentials token, as the seed's curl gets, serves all three calls.
    [token_request] = env.token_requests()
    assert token_request.method == "POST"
    assert token_request.json == {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": f"{env.base_url}/api/v2/",
        "grant_type": "client_credentials",
    }
    calls = [(r.method, r.path, r.query, r.json, r.authorization) for r in env.api_requests()]
    assert calls == [
        (
            "POST",
            "/api/v2/event-streams",
            {},
            {
                "name": "my-event-stream-1",
                "subscriptions": [{"event_type": "user.created"}],
                "destination": {
                    "type": "eventbridge",
                    "configuration": {"aws_account_id": ACCOUNT, "aws_region": REGION},
                },
            },
            bearer(env),
        ),
        ("GET", "/api/v2/event-streams", {}, None, bearer(env)),
        ("PATCH", f"/api/v2/event-streams/{stream['id']}", {}, {"status": "enabled"}, bearer(env)),
    ]


def test_create_json_names_the_partner_source_and_next_steps(
    env: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--name", "crm-sync", "--eventbridge", "--aws-account", ACCOUNT, "--aws-region", REGION]
    code, out, _ = run(capsys, "create", *argv, "--json")
    assert code == 0
    document = json.loads(out)
    source = document["aws_partner_event_source"]
    assert source.startswith("aws.partner/auth0.com/acme-")
    assert document["next_steps"] == [
        f"AWS_REGION={REGION} make deploy "
        f"CDK_ARGS='-c auth0EventSourceName={source} -c createEventBus=true'",
        "aws secretsmanager put-secret-value --secret-id <CrmTokenSecretArn output> "
        "--secret-string file://crm-token.txt",
        # The users Auth0 already has reach the CRM before the stream is turned on.
        "auth0-sync backfill --stack Auth0Sync --checkpoint backfill.ckpt",
        f"auth0-sync streams enable {document['stream']['id']}",
    ]
    assert document["stream"]["status"] == "disabled"
    # Default subscriptions: every event type the pipeline handles.
    assert env.api_requests()[0].json["subscriptions"] == [
        {"event_type": "user.created"},
        {"event_type": "user.updated"},
        {"event_type": "user.deleted"},
    ]


def test_create_webhook_sends_the_token_but_never_prints_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A server that echoes the token back (Auth0 does not): the CLI must still redact it.
    with FakeAuth0(echo_secrets=True) as fake:
        monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
        monkeypatch.setenv(Env.AUTH0_CLIENT_ID, CLIENT_ID)
        monkeypatch.setenv(Env.AUTH0_CLIENT_SECRET, CLIENT_SECRET)
        monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)
        token_file = _token_file(tmp_path, WEBHOOK_TOKEN)
        args = ["create", "--name", "hook", "--webhook", "https://example.com/webhook"]
        code, out, err = run(
            capsys, *args, "--webhook-token-file", str(token_file), "--type", "user.deleted"
        )
        assert code == 0
        [request] = fake.api_requests()
        assert request.json == {
            "name": "hook",
            "subscriptions": [{"event_type": "user.deleted"}],
            "destination": {
                "type": "webhook",
                "configuration": {
                    "webhook_endpoint": "https://example.com/webhook",
                    "webhook_authorization": {"method": "bearer", "token": WEBHOOK_TOKEN},
                },
            },
        }
        [stream_id] = fake.streams
        outputs = [out, err]
        for argv in (["show", stream_id], ["show", stream_id, "--json"], ["list", "--json"]):
            code, out, err = run(capsys, *argv)
            assert code == 0
            outputs += [out, err]
        assert all(WEBHOOK_TOKEN not in text for text in outputs)
        assert all(CLIENT_SECRET not in text for text in outputs)
        shown = json.loads(outputs[4])
        assert shown["destination"]["configuration"]["webhook_authorization"] == {
            "method": "bearer",
            "token": "***",
        }
        assert (
            f"Next: turn it on, then send a test event:\n  auth0-sync streams enable {stream_id}"
            in outputs[0]
        )


def test_list_accepts_a_bare_list_and_says_when_empty(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAuth0(bare_list=True) as fake:
        auth0_env(fake, monkeypatch)
        assert run(capsys, "list") == (0, "No event streams.\n", "")
        stream = fake.add_stream("existing", status="enabled")
        code, out, _ = run(capsys, "list", "--json")
        assert code == 0
        assert json.loads(out) == [stream]
        assert [r.authorization for r in fake.requests] == [f"Bearer {next(iter(fake.tokens))}"] * 2


# -- the other verbs -----------------------------------------------------------------------


def test_show_disable_delete(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    stream = env.add_stream("crm-sync", event_types=["user.created", "user.updated"])
    code, out, _ = run(capsys, "show", stream["id"])
    assert code == 0
    assert f"id:           {stream['id']}\n" in out
    assert "event types:  user.created,user.updated\n" in out
    assert f"  aws_account_id: {ACCOUNT}\n" in out

    code, out, _ = run(capsys, "disable", stream["id"], "--json")
    assert code == 0
    assert json.loads(out)["status"] == "disabled"
    assert env.streams[stream["id"]]["status"] == "disabled"

    code, out, _ = run(capsys, "delete", stream["id"])
    assert (code, out) == (0, f"Deleted event stream {stream['id']}.\n")
    assert stream["id"] not in env.streams
    calls = [(r.method, r.path, r.json) for r in env.api_requests()]
    assert calls == [
        ("GET", f"/api/v2/event-streams/{stream['id']}", None),
        ("PATCH", f"/api/v2/event-streams/{stream['id']}", {"status": "disabled"}),
        ("DELETE", f"/api/v2/event-streams/{stream['id']}", None),
    ]


def test_test_event(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    stream = env.add_stream("crm-sync")
    code, out, _ = run(capsys, "test", stream["id"], "--type", "user.updated")
    assert code == 0
    assert out.startswith(f"Sent a test user.updated event through {stream['id']} (event evt_")
    [request] = env.api_requests()
    assert (request.method, request.path, request.json) == (
        "POST",
        f"/api/v2/event-streams/{stream['id']}/test",
        {"event_type": "user.updated"},
    )
    assert env.test_events == [{"stream_id": stream["id"], "event_type": "user.updated"}]


def test_deliveries_filters_and_pages(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    stream = env.add_stream("crm-sync")
    ids = env.add_failed_deliveries(stream["id"], 150, event_type="user.updated")
    env.add_failed_deliveries(stream["id"], 5, event_type="user.created")

    since = "2000-01-01T01:00:00+01:00"
    filters = ["--type", "user.updated", "--since", since, "--limit", "150"]
    code, out, _ = run(capsys, "deliveries", stream["id"], *filters, "--json")
    assert code == 0
    assert [d["id"] for d in json.loads(out)] == ids
    queries = [r.query for r in env.api_requests()]
    base = {
        "statuses": "failed",
        "event_types": "user.updated",
        "date_from": "2000-01-01T00:00:00Z",
    }
    assert queries == [{**base, "take": "100"}, {**base, "take": "50", "from": ids[99]}]

    code, out, _ = run(capsys, "deliveries", stream["id"], "--type", "user.created")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "EVENT",
        "ID",
        "TYPE",
        "STATUS",
        "ATTEMPTS",
        "LAST",
        "ATTEMPT",
        "LAST",
        "ERROR",
    ]
    assert lines[1].split()[1:4] == ["user.created", "failed", "1"]
    assert lines[-1] == "5 failed deliveries"


def test_redeliver_one_and_all(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    stream = env.add_stream("crm-sync")
    [event_id] = env.add_failed_deliveries(stream["id"], 1)

    code, out, _ = run(capsys, "redeliver", stream["id"], event_id)
    assert (code, out) == (0, f"Redelivery of {event_id} through {stream['id']} requested.\n")
    window = ["--since", "2026-03-04T10:15:30.912Z", "--until", "2026-03-05"]
    code, out, _ = run(
        capsys, "redeliver", stream["id"], "--all", *window, "--type", "user.updated"
    )
    assert code == 0
    assert "(since 2026-03-04T10:15:30Z, until 2026-03-05T00:00:00Z, user.updated)" in out
    code, out, _ = run(capsys, "redeliver", stream["id"], "--all", "--json")
    assert code == 0
    assert json.loads(out) == {"stream_id": stream["id"], "requested": {"statuses": ["failed"]}}

    calls = [(r.method, r.path, r.json) for r in env.api_requests()]
    assert calls == [
        ("POST", f"/api/v2/event-streams/{stream['id']}/redeliver/{event_id}", None),
        (
            "POST",
            f"/api/v2/event-streams/{stream['id']}/redeliver",
            {
                # Whole seconds: the API refuses sub-second precision.
                "date_from": "2026-03-04T10:15:30Z",
                "date_to": "2026-03-05T00:00:00Z",
                "statuses": ["failed"],
                "event_types": ["user.updated"],
            },
        ),
        ("POST", f"/api/v2/event-streams/{stream['id']}/redeliver", {"statuses": ["failed"]}),
    ]


# -- health --------------------------------------------------------------------------------


def test_health_exit_codes_follow_the_findings(
    env: FakeAuth0, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = env.add_stream("crm-sync")
    source = associate(stream)
    code, out, _ = run(capsys, "health", stream["id"])
    assert code == 0
    assert out.splitlines()[:2] == [
        f"Stream {stream['id']} 'crm-sync': enabled",
        f"Partner event source {source}: ACTIVE",
    ]
    assert "Failed deliveries: 0\n" in out
    assert out.splitlines()[-1] == "Health: HEALTHY"

    # One failed delivery is one event missing from the bus until it is redelivered.
    env.add_failed_deliveries(stream["id"], 1)
    code, out, _ = run(capsys, "health", stream["id"])
    assert code == 1
    assert out.splitlines()[-2:] == [
        "Health: WARNING",
        "  - 1 failed deliveries: these events are not on the bus until redelivered "
        f"(`auth0-sync streams redeliver {stream['id']} --all` once the cause is fixed)",
    ]

    env.add_failed_deliveries(stream["id"], 259)  # 260: past half of the 500 limit
    code, out, _ = run(capsys, "health", stream["id"], "--json")
    assert code == 1
    report = json.loads(out)
    assert (report["status"], report["failed_deliveries"]) == ("warning", 260)
    assert report["event_source"] == {
        "name": source,
        "state": "ACTIVE",
        "expires_at": None,
        "error": None,
    }
    assert report["reasons"][1:] == [
        "260 failed deliveries: 52% of the 500 consecutive failures at which Auth0 disables "
        "the stream (failures are counted as possibly consecutive)"
    ]

    env.set_status(stream["id"], "disabled")  # as Auth0 does past its limit
    code, out, _ = run(capsys, "health", stream["id"])
    assert code == 3
    assert "Health: DISABLED\n  - the stream is disabled: Auth0 delivers nothing" in out

    # Each check: the stream, then its failed deliveries, 100 at a time.
    paths = [(r.path, r.query.get("take"), r.query.get("from")) for r in env.api_requests()[:4]]
    deliveries = f"/api/v2/event-streams/{stream['id']}/deliveries"
    assert paths[0] == (f"/api/v2/event-streams/{stream['id']}", None, None)
    assert paths[1] == (deliveries, "100", None)
    assert paths[2] == (f"/api/v2/event-streams/{stream['id']}", None, None)
    # One client-credentials token for all four runs: the CLI's cache file.
    assert len(env.token_requests()) == 1


def test_health_says_when_the_partner_source_delivers_nothing(
    env: FakeAuth0, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Enabled and no failures in Auth0's eyes, but the source was deleted: EventBridge
    # accepts Auth0's events and delivers none.
    stream = env.add_stream("crm-sync")
    source = associate(stream)
    boto3.client("events", region_name=REGION).delete_partner_event_source(
        Name=source, Account=ACCOUNT
    )

    code, out, _ = run(capsys, "health", stream["id"])

    assert code == 3
    assert f"Partner event source {source}: DELETED\n" in out
    assert out.splitlines()[-2:] == [
        "Health: NOT_DELIVERING",
        f"  - the partner event source {source} is DELETED: EventBridge accepts Auth0's "
        "events and delivers none (associate it with an event bus: deploy with "
        "createEventBus=true, or the console's 'Associate with event bus')",
    ]


def test_health_without_aws_credentials_warns_and_names_the_call(
    env: FakeAuth0, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # Nowhere to find credentials, and no instance metadata call off loopback.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    # Belt and braces: were credentials found after all, the call goes to a closed loopback
    # port, never to AWS.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTS", f"http://127.0.0.1:{closed}")
    stream = env.add_stream("crm-sync")

    code, out, _ = run(capsys, "health", stream["id"])

    assert code == 1
    assert f"Partner event source {source_of(stream)}: UNKNOWN\n" in out
    assert out.splitlines()[-1] == (
        "  - could not read the partner event source's state: events:DescribeEventSource "
        f"{source_of(stream)}: Unable to locate credentials"
    )

    # Asked not to look: no AWS call, and the verdict is Auth0's alone.
    code, out, _ = run(capsys, "health", stream["id"], "--no-event-source")
    assert code == 0
    assert "Partner event source: not read (--no-event-source)\n" in out


# -- errors --------------------------------------------------------------------------------


def test_401_names_the_call_and_the_scope_it_needs(
    fake: FakeAuth0, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.setenv(Env.AUTH0_MGMT_TOKEN, "mgmt-expired-token-0001")
    code, out, err = run(capsys, "list")
    assert (code, out) == (4, "")
    assert err == (
        "auth0-sync streams list: error: "
        "GET /api/v2/event-streams: 401 UNAUTHORIZED: the token was rejected "
        f"({Env.AUTH0_MGMT_TOKEN} may have expired); this call needs a Management API token "
        f"(audience {fake.audience}) with scope read:event_streams "
        "(Auth0 says: Invalid token)\n"
    )
    assert "mgmt-expired-token-0001" not in err


def test_a_revoked_cached_token_is_replaced_once(
    env: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "list")[0] == 0
    env.revoke_tokens()
    assert run(capsys, "list")[0] == 0
    assert len(env.token_requests()) == 2
    statuses = [r.authorization for r in env.api_requests()]
    assert statuses[0] == statuses[1] != statuses[2]


def test_403_names_the_missing_scope(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAuth0(scopes=ALL_SCOPES - {"read:event_deliveries"}) as fake:
        monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
        monkeypatch.setenv(Env.AUTH0_CLIENT_ID, CLIENT_ID)
        monkeypatch.setenv(Env.AUTH0_CLIENT_SECRET, CLIENT_SECRET)
        monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)
        stream = fake.add_stream("crm-sync")
        code, _, err = run(capsys, "deliveries", stream["id"])
    assert code == 4
    assert err == (
        "auth0-sync streams deliveries: error: "
        f"GET /api/v2/event-streams/{stream['id']}/deliveries: 403 FORBIDDEN: "
        "missing scope read:event_deliveries: grant it to the application under "
        "Applications > APIs > Auth0 Management API > Machine to Machine Applications "
        "(Auth0 says: Insufficient scope, expected any of: read:event_deliveries)\n"
    )


def test_409_on_a_duplicate_name_or_the_stream_limit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeAuth0(max_streams=2) as fake:
        auth0_env(fake, monkeypatch)
        create_eventbridge(capsys, "crm-sync")
        argv = ["create", "--eventbridge", "--aws-account", ACCOUNT, "--aws-region", REGION]
        code, _, duplicate = run(capsys, *argv, "--name", "crm-sync")
        create_eventbridge(capsys, "second")
        _, _, limit = run(capsys, *argv, "--name", "third")
    assert code == 4
    expected = (
        "auth0-sync streams create: error: "
        "POST /api/v2/event-streams: 409 CONFLICT: a stream named {!r} exists already, "
        "or the tenant has reached its event stream limit (list them, delete one or pick "
        "another name) (Auth0 says: {})\n"
    )
    assert duplicate == expected.format("crm-sync", "Event stream name already in use")
    assert limit == expected.format("third", "You have reached the maximum number of event streams")
    assert len(fake.streams) == 2


def test_429_backs_off_then_succeeds(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    env.fail_next("GET", "/api/v2/event-streams", 429, times=2, headers={"Retry-After": "0"})
    assert run(capsys, "list") == (0, "No event streams.\n", "")
    assert [r.path for r in env.api_requests()] == ["/api/v2/event-streams"] * 3


def test_429_that_persists_is_reported(env: FakeAuth0, capsys: pytest.CaptureFixture[str]) -> None:
    stream = env.add_stream("crm-sync")
    path = f"/api/v2/event-streams/{stream['id']}"
    env.fail_next("PATCH", path, 429, times=9, headers={"Retry-After": "0"}, message="Too many")
    code, _, err = run(capsys, "enable", stream["id"])
    assert code == 4
    assert err == (
        "auth0-sync streams enable: error: "
        f"PATCH {path}: 429 TOO MANY REQUESTS: rate limited: still 429 after 5 attempts "
        "(Auth0 says: Too many)\n"
    )
    assert len(env.api_requests()) == 5
    assert env.streams[stream["id"]]["status"] == "enabled"


def test_retry_after_is_honoured_and_capped(fake: FakeAuth0) -> None:
    slept: list[float] = []
    client = ManagementClient(
        ManagementCredentials(fake.base_url, token=fake.issue_token()),
        sleep=slept.append,
        max_backoff=10.0,
    )
    fake.fail_next("GET", "/api/v2/event-streams", 429, headers={"Retry-After": "7"})
    fake.fail_next("GET", "/api/v2/event-streams", 429, headers={"Retry-After": "120"})
    fake.fail_next("GET", "/api/v2/event-streams", 429)  # no header: exponential, 4 s third time
    assert client.list_streams() == []
    assert slept == [7.0, 10.0, 4.0]


def test_token_is_cached_until_it_expires(fake: FakeAuth0) -> None:
    fake.expires_in = 600
    now = [1000.0]
    cache = TokenCache()

    def client() -> ManagementClient:
        credentials = ManagementCredentials(fake.base_url, CLIENT_ID, CLIENT_SECRET)
        return ManagementClient(credentials, token_cache=cache, clock=lambda: now[0])

    client().list_streams()
    now[0] += 539  # renewed 60 s early (10% of 600 s)
    client().list_streams()
    assert len(fake.token_requests()) == 1
    now[0] += 2
    client().list_streams()
    assert len(fake.token_requests()) == 2
    auth = [r.authorization for r in fake.api_requests()]
    assert auth[0] == auth[1] != auth[2]


def test_bad_client_credentials_never_print_the_secret(
    env: FakeAuth0, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(Env.AUTH0_CLIENT_SECRET, "wrong-secret-9d2e")
    env.fail_next("POST", "/oauth/token", 401, message="bad secret wrong-secret-9d2e")
    code, out, err = run(capsys, "list")
    assert (code, out) == (4, "")
    assert err == (
        "auth0-sync streams list: error: "
        "POST /oauth/token: 401 UNAUTHORIZED: check AUTH0_CLIENT_ID and "
        "AUTH0_CLIENT_SECRET, and that the application is authorized for the Management API "
        f"(audience {env.audience}) with the event stream scopes (bad secret ***)\n"
    )
    assert env.api_requests() == []


def test_unknown_stream_is_404_naming_the_call(
    env: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "show", "est_0000000000000000000000")
    assert code == 4
    assert err == (
        "auth0-sync streams show: error: "
        "GET /api/v2/event-streams/est_0000000000000000000000: 404 NOT FOUND: not found "
        "(Auth0 says: The event stream does not exist.)\n"
    )


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (
            {},
            "auth0-sync streams list: error: "
            "AUTH0_DOMAIN is not set: your tenant domain or base URL\n",
        ),
        (
            {"AUTH0_DOMAIN": "acme.eu.auth0.com"},
            "auth0-sync streams list: error: "
            "set AUTH0_MGMT_TOKEN (or AUTH0_MGMT_TOKEN_FILE, --token-file), or "
            "AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET (missing: AUTH0_CLIENT_ID, "
            "AUTH0_CLIENT_SECRET)\n",
        ),
        (
            {"AUTH0_DOMAIN": "http://acme.eu.auth0.com", "AUTH0_MGMT_TOKEN": "t"},
            "auth0-sync streams list: error: "
            "AUTH0_DOMAIN='http://acme.eu.auth0.com': http is allowed for a loopback "
            "host only; use https\n",
        ),
        (
            {"AUTH0_DOMAIN": "https://acme.eu.auth0.com/api/v2", "AUTH0_MGMT_TOKEN": "t"},
            "auth0-sync streams list: error: "
            "AUTH0_DOMAIN='https://acme.eu.auth0.com/api/v2' must be a domain or a "
            "base URL without a path\n",
        ),
    ],
)
def test_configuration_errors_name_the_variable(
    environment: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in (Env.AUTH0_DOMAIN, Env.AUTH0_CLIENT_ID, Env.AUTH0_CLIENT_SECRET):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert run(capsys, "list") == (2, "", message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "create",
                "--name",
                "n",
                "--eventbridge",
                "--aws-account",
                "12345",
                "--aws-region",
                "eu-west-1",
            ],
            "argument --aws-account: '12345' is not an AWS account id (12 digits)",
        ),
        (
            [
                "create",
                "--name",
                "n",
                "--eventbridge",
                "--aws-account",
                ACCOUNT,
                "--aws-region",
                "Europe",
            ],
            "argument --aws-region: 'Europe' is not an AWS region (like eu-west-1)",
        ),
        (
            ["create", "--name", "n", "--eventbridge", "--aws-account", ACCOUNT],
            "--eventbridge needs --aws-region",
        ),
        (
            ["create", "--name", "n", "--webhook", "https://example.com/hook"],
            "--webhook needs --webhook-token-file FILE (or $AUTH0_SYNC_WEBHOOK_TOKEN)",
        ),
        (
            ["create", "--name", "n", "--webhook", "http://example.com/hook"],
            "argument --webhook: 'http://example.com/hook' is not an https:// URL",
        ),
        (
            [
                "create",
                "--name",
                "n",
                "--eventbridge",
                "--aws-account",
                ACCOUNT,
                "--aws-region",
                REGION,
                "--type",
                "user.created,user.login",
            ],
            "argument --type: unknown event type(s) ['user.login']",
        ),
        (
            ["deliveries", "est_abc", "--since", "yesterday"],
            "argument --since: 'yesterday' is not an ISO-8601 time",
        ),
        (
            ["test", "est_abc", "--type", "user.login"],
            "argument --type: 'user.login' is not one of",
        ),
        (["show", "abc"], "argument ID: 'abc' is not an event stream id"),
        (["redeliver", "est_abc"], "give either EVENT_ID or --all"),
        (["redeliver", "est_abc", "evt_abc", "--all"], "give either EVENT_ID or --all"),
        (
            ["redeliver", "est_abc", "evt_abc", "--type", "user.created"],
            "--since/--until/--type go with --all",
        ),
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_flag(
    argv: list[str],
    message: str,
    env: FakeAuth0,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert message in usage_error(capsys, *argv)
    assert env.requests == []


def test_a_server_error_body_is_reported(
    env: FakeAuth0, capsys: pytest.CaptureFixture[str]
) -> None:
    stream: dict[str, Any] = env.add_stream("crm-sync")
    env.fail_next("POST", f"/api/v2/event-streams/{stream['id']}/redeliver", 409, message="busy")
    code, _, err = run(capsys, "redeliver", stream["id"], "--all")
    assert code == 4
    assert err == (
        "auth0-sync streams redeliver: error: "
        f"POST /api/v2/event-streams/{stream['id']}/redeliver: 409 CONFLICT: one or "
        "more matching events is not in a state that allows redelivery (Auth0 says: busy)\n"
    )


# -- the Management API token: cached in a user-only file, or read from a file ----------


def test_the_token_is_cached_in_a_user_only_file_until_it_expires(
    env: FakeAuth0, token_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "list")[0] == 0
    assert run(capsys, "list")[0] == 0
    # Two processes' worth of runs (a FileTokenCache each), one token.
    assert len(env.token_requests()) == 1
    cache_file = token_cache_dir / "management-tokens.json"
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_cache_dir.stat().st_mode) == 0o700
    assert cache_file.stat().st_uid == os.getuid()

    # Expired (Auth0 said expires_in, the client renews a little early): a new token.
    entries = json.loads(cache_file.read_text())
    for entry in entries.values():
        entry["expires_at"] = 1.0
    cache_file.write_text(json.dumps(entries))
    assert run(capsys, "list")[0] == 0
    assert len(env.token_requests()) == 2
    auth = [r.authorization for r in env.api_requests()]
    assert auth[0] == auth[1] != auth[2]


def test_a_cache_file_others_can_read_is_not_trusted_and_is_replaced(
    env: FakeAuth0, token_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "list")[0] == 0
    cache_file = token_cache_dir / "management-tokens.json"
    cache_file.chmod(0o644)

    assert run(capsys, "list")[0] == 0

    assert len(env.token_requests()) == 2
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600


def test_no_token_cache_writes_nothing(
    env: FakeAuth0, token_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "list", "--no-token-cache")[0] == 0
    assert run(capsys, "list", "--no-token-cache")[0] == 0
    assert not token_cache_dir.exists()


def _token_file(tmp_path: Path, content: str, mode: int = 0o600) -> Path:
    path = tmp_path / "mgmt-token.txt"
    path.write_text(content)
    path.chmod(mode)
    return path


def test_the_token_is_read_from_a_file_by_flag_or_variable(
    fake: FakeAuth0,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = fake.issue_token(ALL_SCOPES)
    path = _token_file(tmp_path, f"{token}\n")
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)

    assert run(capsys, "list", "--token-file", str(path)) == (0, "No event streams.\n", "")
    monkeypatch.setenv(Env.AUTH0_MGMT_TOKEN_FILE, str(path))
    assert run(capsys, "list") == (0, "No event streams.\n", "")

    assert [r.authorization for r in fake.api_requests()] == [f"Bearer {token}"] * 2
    assert fake.token_requests() == []


@pytest.mark.parametrize(
    ("content", "mode", "expected_err"),
    [
        (
            "",
            0o600,
            "auth0-sync streams list: error: "
            "--token-file {path} is empty: it must hold the Management API token\n",
        ),
        (None, 0o600, "auth0-sync streams list: error: --token-file {path}: no such file\n"),
    ],
)
def test_a_bad_token_file_is_named(
    fake: FakeAuth0,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    mode: int,
    expected_err: str,
) -> None:
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)
    path = tmp_path / "absent.txt" if content is None else _token_file(tmp_path, content, mode)

    assert run(capsys, "list", "--token-file", str(path)) == (
        2,
        "",
        expected_err.format(path=path),
    )
    assert fake.requests == []


def test_a_token_file_others_can_read_works_with_a_warning(
    fake: FakeAuth0,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _token_file(tmp_path, fake.issue_token(ALL_SCOPES), mode=0o644)
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.delenv(Env.AUTH0_MGMT_TOKEN, raising=False)

    code, _, err = run(capsys, "list", "--token-file", str(path))

    assert code == 0
    assert err == f"warning: {path} can be read by other users; `chmod 600 {path}`\n"


def test_a_token_given_twice_is_refused(
    fake: FakeAuth0,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _token_file(tmp_path, "from-the-file")
    monkeypatch.setenv(Env.AUTH0_DOMAIN, fake.base_url)
    monkeypatch.setenv(Env.AUTH0_MGMT_TOKEN, "from-the-environment")

    assert run(capsys, "list", "--token-file", str(path)) == (
        2,
        "",
        "auth0-sync streams list: error: "
        "give the Management API token once: --token-file or AUTH0_MGMT_TOKEN, not both\n",
    )
    assert fake.requests == []


def test_create_webhook_reads_the_token_from_the_environment(
    env: FakeAuth0, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(Env.WEBHOOK_TOKEN, WEBHOOK_TOKEN)
    code, out, _ = run(
        capsys, "create", "--name", "hook", "--webhook", "https://example.com/webhook"
    )
    assert code == 0
    [request] = env.api_requests()
    authorization = request.json["destination"]["configuration"]["webhook_authorization"]
    assert authorization == {"method": "bearer", "token": WEBHOOK_TOKEN}
    assert WEBHOOK_TOKEN not in out
