"""The live path's deactivation brake through the real handlers, against moto's state table
and DLQ and the reference CRM over HTTP: past DEACTIVATION_WINDOW_LIMIT the deletes wait in
the DLQ under `deactivation_limit` with their contacts untouched; the window's counter is
one item of the state table; `replay` leaves held deletes alone unless a person gives
`--allow-deactivations N`, and more than N held stop it before anything is replayed."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from auth0_sync.names import DLQ_ATTR_REASON, Env
from auth0_sync_cli.crm_server import CrmServer
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from tests.integration.helpers import dlq_messages, invoke
from tests.integration.initial_sync import contact_of
from tests.integration.test_replay import user_event

pytestmark = pytest.mark.integration

USERS = range(1, 5)


def user_id(n: int) -> str:
    return f"auth0|user{n:04d}"


def statuses(crm: CrmServer) -> list[str]:
    return [contact_of(crm, user_id(n))["status"] for n in USERS]


def reasons(aws: LocalResources) -> list[str]:
    return sorted(m["attributes"][DLQ_ATTR_REASON].split(":")[0] for m in dlq_messages(aws))


def in_dlq(aws: LocalResources) -> int:
    """Messages in the DLQ, visible or not (read without hiding them from the replay)."""
    found = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(found["ApproximateNumberOfMessages"]) + int(
        found["ApproximateNumberOfMessagesNotVisible"]
    )


def window_items(aws: LocalResources) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=aws.state_table)["Items"]
    return [i for i in items if i["user_id"]["S"].startswith("#deactivations#")]


@pytest.fixture
def four_deleted(
    sync_env: LocalResources, crm: CrmServer, monkeypatch: pytest.MonkeyPatch
) -> LocalResources:
    """Four users signed up, then all four deleted, with a limit of two per window."""
    monkeypatch.setenv(Env.DEACTIVATION_WINDOW_LIMIT, "2")
    for n in USERS:
        assert invoke(user_event(n, "user.created"))["status"] == "applied"
    for n in USERS:
        invoke(user_event(n, "user.deleted", minutes=5))
    return sync_env


def test_past_the_window_limit_deletes_wait_in_the_dlq(
    four_deleted: LocalResources, crm: CrmServer
) -> None:
    assert statuses(crm) == ["deactivated", "deactivated", "active", "active"]
    assert reasons(four_deleted) == ["deactivation_limit", "deactivation_limit"]
    (item,) = window_items(four_deleted)
    assert item["deactivations"] == {"N": "2"}


def test_replay_leaves_held_deletes_unless_a_person_allows_them(
    four_deleted: LocalResources, crm: CrmServer, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    code = main(["replay", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert (report["messages_scanned"], report["messages_selected"]) == (2, 0)
    assert any("replay --allow-deactivations 2" in w for w in report["warnings"])
    assert statuses(crm) == ["deactivated", "deactivated", "active", "active"]
    assert in_dlq(four_deleted) == 2

    code = main(["replay", "--allow-deactivations", "1", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert "more than --allow-deactivations 1" in report["stopped"]
    assert statuses(crm) == ["deactivated", "deactivated", "active", "active"]
    assert in_dlq(four_deleted) == 2

    code = main(["replay", "--allow-deactivations", "2", "--json"])

    capsys.readouterr()
    assert code == 0
    assert statuses(crm) == ["deactivated"] * 4
    assert in_dlq(four_deleted) == 0
    (item,) = window_items(four_deleted)
    assert item["deactivations"] == {"N": "2"}  # the released deletes went past the counter
