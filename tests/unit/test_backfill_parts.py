"""The pieces of backfill that decide alone: the snapshot event, the shared CRM rate, the
checkpoint's watermark, and the export reader (gzipped or not, line numbers kept)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from auth0_sync.events import parse_event
from auth0_sync.replay.pacing import TokenBucket
from auth0_sync_cli.backfill.checkpoint import Checkpoint
from auth0_sync_cli.backfill.snapshot import snapshot_event
from auth0_sync_cli.export import export_fields, read_export

pytestmark = pytest.mark.unit

USER = {"user_id": "auth0|1", "email": "a@example.com", "updated_at": "2026-02-10T08:00:00Z"}


def test_a_snapshot_is_a_user_updated_at_its_updated_at_with_a_stable_id() -> None:
    event = parse_event(snapshot_event(USER))

    assert event.event_type == "user.updated"
    assert event.change_time.isoformat() == "2026-02-10T08:00:00+00:00"
    assert not event.detail.is_test
    assert event.detail.a0purpose is None
    assert snapshot_event(dict(USER))["detail"]["id"] == event.event_id
    later = {**USER, "updated_at": "2026-02-11T08:00:00Z"}
    assert snapshot_event(later)["detail"]["id"] != event.event_id
    other = {**USER, "user_id": "auth0|2"}
    assert snapshot_event(other)["detail"]["id"] != event.event_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_the_bucket_spaces_calls_evenly_and_charges_calls_made_elsewhere() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4.0, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        bucket.take()
    assert clock.slept == [0.25, 0.25]
    bucket.charge(2)  # an invocation that made 2 more calls than it took
    bucket.take()
    assert clock.slept[-1] == 0.75  # its own quarter second, and the two it owed
    assert bucket.taken == 6


def test_the_checkpoint_is_the_last_line_before_which_everything_is_done(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    checkpoint = Checkpoint(str(path), str(tmp_path / "export.json"))

    for line in (2, 3, 5):
        checkpoint.finished(line, "create")
    assert checkpoint.done_through == 0
    checkpoint.finished(1, "link")
    assert checkpoint.done_through == 3
    checkpoint.skipped_blank(4)
    assert checkpoint.done_through == 5
    checkpoint.save()
    saved = json.loads(path.read_text())
    assert saved["done_through"] == 5
    assert saved["counts"] == {"create": 3, "link": 1}


@pytest.mark.parametrize("gzipped", [True, False])
def test_an_export_is_read_line_by_line_gzipped_or_not(tmp_path: Path, gzipped: bool) -> None:
    text = json.dumps(USER) + "\n\n" + json.dumps({**USER, "user_id": "auth0|2"}) + "\n"
    path = tmp_path / "users.json"
    if gzipped:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)

    users = list(read_export(str(path)))

    assert [(u.line, u.user and u.user["user_id"]) for u in users] == [
        (1, "auth0|1"),
        (2, None),
        (3, "auth0|2"),
    ]
    assert [u.line for u in read_export(str(path), start_after=2)] == [3]


def test_an_export_asks_for_each_mapped_attribute_once() -> None:
    fields = export_fields(["email", "user_metadata.company", "app_metadata.crm_contact_id"])

    assert fields.count("app_metadata") == 1
    assert {"user_id", "updated_at", "email", "user_metadata"} <= set(fields)
