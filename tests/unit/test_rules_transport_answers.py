"""How the shared transport reads an answer (`auth0_sync/destinations/transport.py`, issue
28): a body that is not JSON, and the `Retry-After` header (RFC 9110 section 10.2.3:
seconds, or an HTTP date). Answers are built as `requests.Response` objects, no network."""

from __future__ import annotations

import pytest
import requests

from auth0_sync.destinations.transport import json_body, retry_after
from auth0_sync.errors import TransientError

pytestmark = pytest.mark.unit


def answer(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    return response


def test_a_body_that_is_not_json_is_a_transient_bad_answer() -> None:
    with pytest.raises(TransientError) as bad:
        json_body(answer(502, b"<html>Bad gateway</html>"), "GET /contacts")
    assert bad.value.reason == "crm_bad_answer"
    assert bad.value.message == "crm GET /contacts: HTTP 502 with a body that is not JSON"
    assert json_body(answer(200, b'{"id": "c_1"}'), "GET /contacts/c_1") == {"id": "c_1"}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0", 0.0), ("1.5", None), ("soon", None), ("", None)],
)
def test_retry_after_in_seconds(header: str, seconds: float | None) -> None:
    assert retry_after(answer(429, headers={"Retry-After": header})) == seconds


def test_no_retry_after_is_none() -> None:
    assert retry_after(answer(429)) is None


def test_a_retry_after_date_in_the_past_is_no_wait() -> None:
    assert retry_after(answer(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
