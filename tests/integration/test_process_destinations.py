"""`auth0-sync process` with CRM_TYPE=hubspot and salesforce: a shuffled, duplicated stream
ends with the vendor's contacts equal to the Auth0 truth, within the vendor's limits, the
credentials read from the secret in the destination's documented shape."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from auth0_sync.names import CrmType, Env
from auth0_sync_cli.fakes.hubspot import FakeHubSpot, hubspot_contact
from auth0_sync_cli.fakes.salesforce import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSalesforce,
    salesforce_contact,
)
from auth0_sync_cli.local_aws import LocalResources
from auth0_sync_cli.main import main
from auth0_sync_cli.sample import generate, reconcile

pytestmark = pytest.mark.integration

# The vendors' default mapping, written out (generic contract names).
VENDOR_MAPPING = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "phone_number": "phone",
}


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["process", *args, "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = max(n for n, line in enumerate(lines) if line == "{")
    result: dict[str, Any] = json.loads("\n".join(lines[start:]))
    return result


@pytest.mark.parametrize("crm_type", [CrmType.HUBSPOT, CrmType.SALESFORCE])
def test_a_shuffled_duplicated_stream_ends_equal_to_the_truth(
    crm_type: CrmType,
    aws: LocalResources,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # No contacts from before: the vendors' fakes are seeded by the lifecycle tests.
    sample = generate(25, seed=13, duplicate_share=0.0, specials=False, preexisting_share=0)
    stream = sample.events * 2  # every event delivered twice, in a shuffled order
    random.Random(3).shuffle(stream)
    fake: FakeHubSpot | FakeSalesforce
    read: Callable[[], list[dict[str, Any]]]
    if crm_type is CrmType.HUBSPOT:
        hubspot = FakeHubSpot(window_calls=50, window_ms=2000)  # the headers announce it
        fake, secret = hubspot, json.dumps({"token": hubspot.token})

        def read() -> list[dict[str, Any]]:
            return [hubspot_contact(r) for r in hubspot.contacts()]

    else:
        org = FakeSalesforce()
        fake = org
        secret = json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})

        def read() -> list[dict[str, Any]]:
            return [salesforce_contact(r) for r in org.contacts()]

    with fake:
        for name, value in aws.environment().items():
            if name != "AWS_ENDPOINT_URL":
                monkeypatch.setenv(name, value)
        monkeypatch.delenv(Env.CRM_API_TOKEN, raising=False)  # from the secret, as in AWS
        boto3.client("secretsmanager").put_secret_value(
            SecretId=aws.secret_arn, SecretString=secret
        )
        monkeypatch.setenv(Env.CRM_TYPE, crm_type)
        monkeypatch.setenv(Env.CRM_BASE_URL, fake.base_url)
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        monkeypatch.chdir(tmp_path)
        path = tmp_path / "stream.json"
        path.write_text(json.dumps(stream))
        result = run_json([str(path), "--state", "aws"], capsys)
        assert result["events"] == len(stream)
        assert result["failed"] == {}
        assert reconcile(sample.truth, read(), fields=tuple(VENDOR_MAPPING.values())) == []
        if isinstance(fake, FakeHubSpot):
            assert fake.throttled["TEN_SECONDLY_ROLLING"] == 0  # kept under the window
        else:
            assert fake.api_used <= fake.daily_limit
