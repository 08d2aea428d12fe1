"""The buffered redrive's configuration and how it cuts its SendMessageBatch calls."""

from __future__ import annotations

import pytest

from auth0_sync.errors import ConfigError
from auth0_sync.redrive import RedriveSettings
from auth0_sync.replay.buffer_target import chunks, parse_buffer_queues

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/Auth0Sync-BuffersUserCreatedQueue"


def test_the_queues_are_read_by_type_legacy_spelling_included() -> None:
    text = f'{{"user.created": "{URL}", "com.auth0.user.deleted": "{URL}-d"}}'

    assert parse_buffer_queues(text) == {"user.created": URL, "user.deleted": f"{URL}-d"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("user.created=x", "not JSON"),
        ("{}", "at least one type"),
        (f'{{"user.renamed": "{URL}"}}', "unknown event type 'user.renamed'"),
        ('{"user.created": ""}', "'user.created': the queue URL must be a non-empty string"),
    ],
)
def test_a_wrong_mapping_is_refused_saying_what(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_buffer_queues(text)


def test_the_function_needs_its_functions_or_its_queues() -> None:
    with pytest.raises(ConfigError, match=r"SYNC_FUNCTIONS.*REDRIVE_BUFFER_QUEUES"):
        RedriveSettings.from_env({"DLQ_URL": URL})
    buffered = RedriveSettings.from_env(
        {"DLQ_URL": URL, "REDRIVE_BUFFER_QUEUES": f'{{"user.created": "{URL}"}}'}
    )
    assert (buffered.functions, buffered.buffers) == ({}, {"user.created": URL})


def test_calls_hold_ten_entries_and_256_kib_at_most() -> None:
    small = [(n, "x" * 100) for n in range(25)]
    assert [len(call) for call in chunks(small)] == [10, 10, 5]
    # Three bodies of 100 KiB: two fit in 256 KiB, the third starts the next call.
    large = [(n, "y" * 100 * 1024) for n in range(3)]
    assert [[n for n, _ in call] for call in chunks(large)] == [[0, 1], [2]]
