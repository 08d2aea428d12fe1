"""The generic REST adapter (`auth0_sync/destinations/rest.py`) against a real HTTP server on
loopback that answers what each test scripts (issue 28): what each request carries, how
each answer is read, which error each refusal becomes. The answers a contract-1.2 server
gives are shaped from `/work/shared/contracts/crm-contacts-api.yaml` (docs/contracts/
crm-contacts-api.yaml): contacts with a string or integer `id`, an `ETag` on every answer
about one contact, 404/409/412/422 with `{"message": ...}`; a contract-1.1 server sends no
`ETag`. Expected values are written out."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from auth0_sync.destinations.credentials import Cached
from auth0_sync.destinations.rest import CircuitBreaker, RestCrmClient
from auth0_sync.destinations.rest_batch import RestBatches
from auth0_sync.errors import (
    ContactChanged,
    ContactExists,
    CredentialsRejected,
    CrmRejected,
    EmailTaken,
    TransientError,
)

pytestmark = pytest.mark.integration


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Script:
    """The answers to give, in order (the last one is repeated), and the requests seen."""

    answers: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer

    def answer(self, status: int, body: Any = None, **headers: str) -> None:
        self.answers.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, body))


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            script.seen.append(
                Seen(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    json.loads(raw) if raw else None,
                )
            )
            status, headers, body = (
                script.answers.pop(0) if len(script.answers) > 1 else script.answers[0]
            )
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            time.sleep(script.delay)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client gone
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _any

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    return Handler


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def server(script: Script) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/api/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(base_url: str, **kwargs: Any) -> RestCrmClient:
    kwargs.setdefault("backoff_base", 0.001)
    kwargs.setdefault("backoff_cap", 0.002)
    return RestCrmClient(base_url, lambda: "tok-1", **kwargs)


def test_a_lookup_asks_for_what_it_is_given_with_the_token(server: str, script: Script) -> None:
    script.answer(200, [{"id": "c_1", "email": "a@example.com"}, "not a contact"])
    found = client(server).find_contacts(email="a@example.com")
    assert found == [{"id": "c_1", "email": "a@example.com"}]
    (seen,) = script.seen
    assert (seen.method, seen.path, seen.query) == (
        "GET",
        "/api/contacts",
        {"email": ["a@example.com"]},
    )
    assert seen.headers["authorization"] == "Bearer tok-1"
    client(server).find_contacts(auth0_user_id="auth0|1")
    assert script.seen[1].query == {"auth0_user_id": ["auth0|1"]}


def test_a_lookup_without_an_email_or_an_id_is_refused_before_any_request(
    server: str, script: Script
) -> None:
    with pytest.raises(ValueError, match=r"^find_contacts needs") as refused:
        client(server).find_contacts(email="", auth0_user_id=None)
    assert str(refused.value) == "find_contacts needs an email or an auth0_user_id"
    assert script.seen == []


@pytest.mark.parametrize("call", ["find", "list"])
def test_a_list_answered_with_something_else_is_a_transient_bad_answer(
    server: str, script: Script, call: str
) -> None:
    script.answer(200, {"contacts": []})
    crm = client(server)
    with pytest.raises(TransientError) as bad:
        crm.find_contacts(email="a@example.com") if call == "find" else crm.list_contacts()
    assert bad.value.reason == "crm_bad_answer"
    assert bad.value.message == "crm GET /contacts: the answer is not a list"


def test_a_full_page_names_the_next_and_a_short_one_is_the_last(
    server: str, script: Script
) -> None:
    script.answer(200, [{"id": 7}, {"no_id": True}, {"id": "c_9"}])
    page = client(server).list_contacts(limit=3, after="c_1")
    assert list(page) == [{"id": "7"}, {"id": "c_9"}]
    assert page.next_after == "c_9"
    assert script.seen[0].query == {"limit": ["3"], "after": ["c_1"]}
    script.answers[:] = [(200, {}, [{"id": "c_2"}, {"id": "c_3"}])]
    page = client(server).list_contacts()
    assert (list(page), page.next_after) == ([{"id": "c_2"}, {"id": "c_3"}], None)
    assert script.seen[1].query == {"limit": ["100"]}


def test_an_empty_page_is_the_last(server: str, script: Script) -> None:
    script.answer(200, [])
    assert client(server).list_contacts(limit=0).next_after is None


def test_a_contact_read_keeps_its_etag_and_a_missing_one_is_none(
    server: str, script: Script
) -> None:
    script.answer(200, {"id": 42, "email": "a@example.com"}, ETag='"v3"')
    script.answer(404, {"message": "no contact c/9"})
    crm = client(server)
    assert crm.get_contact("42") == {"id": "42", "email": "a@example.com"}
    assert crm.version_seen("42") == '"v3"'
    assert crm.versioned is True
    assert crm.get_contact("c/9") is None
    assert [s.path for s in script.seen] == ["/api/contacts/42", "/api/contacts/c%2F9"]


@pytest.mark.parametrize(
    ("contact_id", "path"),
    # requests sends `%2E` as `.` (an unreserved character, RFC 3986 section 2.3), but
    # never resolves a dot segment away: the server still sees the id.
    [(".", "/api/contacts/."), ("..", "/api/contacts/.."), ("a b", "/api/contacts/a%20b")],
)
def test_an_id_is_always_one_path_segment(
    server: str, script: Script, contact_id: str, path: str
) -> None:
    script.answer(404, {})
    assert client(server).get_contact(contact_id) is None
    assert script.seen[0].path == path


def test_a_server_of_contract_1_1_sends_no_etag_and_writes_go_unconditional(
    server: str, script: Script
) -> None:
    script.answer(200, {"id": "c_1"})
    crm = client(server)
    crm.get_contact("c_1")
    assert (crm.versioned, crm.version_seen("c_1")) == (False, None)


@pytest.mark.parametrize("body", [["c_1"], {"email": "a@example.com"}, {"id": None}, {"id": 1.5}])
def test_an_answer_that_is_not_a_contact_is_a_transient_bad_answer(
    server: str, script: Script, body: Any
) -> None:
    script.answer(200, body)
    with pytest.raises(TransientError) as bad:
        client(server).get_contact("c_1")
    assert bad.value.reason == "crm_bad_answer"
    assert bad.value.message == "crm GET /contacts/c_1: the answer is not a contact"


def test_a_create_carries_its_key_and_is_retried_on_an_outage(server: str, script: Script) -> None:
    script.answer(503, {"message": "down"})
    script.answer(201, {"id": "c_5", "email": "a@example.com"}, ETag='"v1"')
    contact = client(server).create_contact({"email": "a@example.com"}, idempotency_key="k-1")
    assert contact == {"id": "c_5", "email": "a@example.com"}
    assert [(s.method, s.headers["idempotency-key"], s.body) for s in script.seen] == [
        ("POST", "k-1", {"email": "a@example.com"}),
        ("POST", "k-1", {"email": "a@example.com"}),
    ]


def test_a_guarded_update_sends_its_version_and_a_plain_one_none(
    server: str, script: Script
) -> None:
    script.answer(200, {"id": "c_1", "name": "Ola"}, ETag='"v2"')
    crm = client(server, max_attempts=1)
    assert crm.update_guarded("c_1", {"name": "Ola"}, owner="auth0|1", version='"v1"') == {
        "id": "c_1",
        "name": "Ola",
    }
    assert crm.update_contact("c_1", {"name": "Ola"}) is not None
    first, second = script.seen
    assert (first.method, first.path, first.body) == ("PATCH", "/api/contacts/c_1", {"name": "Ola"})
    assert first.headers["if-match"] == '"v1"'
    assert "if-match" not in second.headers
    assert crm.version_seen("c_1") == '"v2"'


def test_a_version_from_another_threads_answer_is_noted_for_this_thread_only(
    server: str, script: Script
) -> None:
    """A buffered lane's batch answer is read in another thread: its ETags are noted in the
    lane's thread, so the lane's next guarded write sends the batch's version, not an
    older one, and the other threads keep their own."""
    script.answer(200, {"id": "c_1"}, ETag='"v1"')
    crm = client(server)
    crm.get_contact("c_1")
    crm.note_version("c_1", '"v2"')  # the batch wrote the contact after that read
    assert crm.version_seen("c_1") == '"v2"'
    elsewhere: list[str | None] = []
    other = threading.Thread(target=lambda: elsewhere.append(crm.version_seen("c_1")))
    other.start()
    other.join()
    assert elsewhere == [None]
    crm.note_version("c_1", None)  # an answer without an ETag: the old one is no use
    assert crm.version_seen("c_1") is None


def test_a_guarded_update_of_a_changed_contact_forgets_its_version(
    server: str, script: Script
) -> None:
    script.answer(200, {"id": "c_1"}, ETag='"v1"')
    script.answer(412, {"message": "precondition failed"})
    crm = client(server)
    crm.get_contact("c_1")
    with pytest.raises(ContactChanged) as changed:
        crm.update_guarded("c_1", {"name": "B"}, owner=None, version='"v1"')
    assert changed.value.message == "crm PATCH /contacts/c_1: HTTP 412: the contact changed since"
    assert crm.version_seen("c_1") is None
    assert len(script.seen) == 2  # a 412 is an answer, not retried


def test_an_update_of_a_contact_gone_is_none(server: str, script: Script) -> None:
    script.answer(404, {"message": "not found"})
    assert client(server).update_contact("c_1", {"name": "B"}) is None


def test_a_412_outside_a_guarded_update_and_a_404_outside_a_read_are_refusals(
    server: str, script: Script
) -> None:
    script.answer(412, {"message": "precondition failed"})
    with pytest.raises(CrmRejected) as refused:
        client(server).find_contacts(email="a@example.com")
    assert (refused.value.reason, refused.value.status) == ("crm_412", 412)
    script.answers[:] = [(404, {}, {"message": "no route"})]
    with pytest.raises(CrmRejected) as missing:
        client(server).create_contact({"email": "a@example.com"}, idempotency_key="k")
    assert missing.value.message == "crm POST /contacts: HTTP 404: no route"


def test_a_refusal_names_the_request_and_masks_what_we_sent(server: str, script: Script) -> None:
    script.answer(422, {"message": "field 'name' is invalid: Zebedee Quux"})
    with pytest.raises(CrmRejected) as refused:
        client(server).update_contact("c_1", {"name": "Zebedee Quux"})
    assert refused.value.reason == "crm_422"
    assert "Zebedee Quux" not in refused.value.message
    assert refused.value.message.startswith("crm PATCH /contacts/c_1: HTTP 422: field 'name' is")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"error": "bad request"}, ": bad request"),
        ({"message": "", "error": "fallback"}, ": fallback"),
        (["not", "an", "object"], ""),
        (b"<html>oops</html>", ""),
        ({}, ""),
    ],
)
def test_a_refusal_says_the_crms_message_when_it_has_one(
    server: str, script: Script, body: Any, detail: str
) -> None:
    script.answer(400, body)
    with pytest.raises(CrmRejected) as refused:
        client(server).find_contacts(email="a@example.com")
    assert refused.value.message == f"crm GET /contacts: HTTP 400{detail}"


def test_a_409_is_a_known_contact_on_create_and_a_taken_email_on_update(
    server: str, script: Script
) -> None:
    script.answer(409, {"message": "conflict"})
    with pytest.raises(ContactExists):
        client(server).create_contact({"email": "a@example.com"}, idempotency_key="k")
    with pytest.raises(EmailTaken) as taken:
        client(server).update_contact("c_1", {"email": "a@example.com"})
    assert taken.value.message == "crm PATCH /contacts/c_1: HTTP 409: conflict"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("field 'email' is already used by another contact", EmailTaken),
        ("field 'email' is invalid", CrmRejected),
        ("field 'name' is already used by another contact", CrmRejected),
    ],
)
def test_a_422_is_a_taken_email_only_when_it_says_so(
    server: str, script: Script, message: str, error: type[Exception]
) -> None:
    script.answer(422, {"message": message})
    with pytest.raises(CrmRejected) as refused:
        client(server).update_contact("c_1", {"phone": "1"})
    assert type(refused.value) is error
    assert refused.value.message == f"crm PATCH /contacts/c_1: HTTP 422: {message}"


def test_the_retry_policy_and_the_base_url_are_the_ones_given(server: str, script: Script) -> None:
    script.answer(503, {"message": "down"})
    crm = client(server.rstrip("/") + "//", max_attempts=2)
    with pytest.raises(TransientError) as down:
        crm.find_contacts(email="a@example.com")
    assert down.value.reason == "crm_503"
    assert [s.path for s in script.seen] == ["/api/contacts", "/api/contacts"]
    policy = crm.transport.policy
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap) == (2, 0.001, 0.002)
    assert (policy.budget_seconds, policy.margin_ms) == (10.0, 1500)
    assert crm.transport.name == "crm"


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda crm: crm.find_contacts(email="a@example.com"), "GET /contacts"),
        (lambda crm: crm.list_contacts(), "GET /contacts"),
        (lambda crm: crm.get_contact("c_1"), "GET /contacts/c_1"),
        (lambda crm: crm.create_contact({"email": "a@x.org"}, "k"), "POST /contacts"),
        (lambda crm: crm.update_contact("c_1", {"name": "B"}), "PATCH /contacts/c_1"),
    ],
)
def test_an_answer_that_is_not_json_names_the_request(
    server: str, script: Script, call: Any, what: str
) -> None:
    script.answer(200, b"<html>a proxy's page</html>")
    with pytest.raises(TransientError) as bad:
        call(client(server))
    assert bad.value.reason == "crm_bad_answer"
    assert bad.value.message == f"crm {what}: HTTP 200 with a body that is not JSON"


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda crm: crm.list_contacts(), "GET /contacts"),
        (lambda crm: crm.get_contact("c_1"), "GET /contacts/c_1"),
    ],
)
def test_a_refused_read_names_the_request(
    server: str, script: Script, call: Any, what: str
) -> None:
    script.answer(400, {"message": "no"})
    with pytest.raises(CrmRejected) as refused:
        call(client(server))
    assert refused.value.message == f"crm {what}: HTTP 400: no"


def test_a_full_page_names_its_last_contact_as_the_next_start(server: str, script: Script) -> None:
    script.answer(200, [{"id": "c_1"}, {"id": "c_2"}, {"id": "c_3"}])
    assert client(server).list_contacts(limit=3).next_after == "c_3"


def test_the_lambdas_retry_policy_is_the_adapters_own() -> None:
    # The factory passes only the timeout and the retry budget (from Settings): the rest of
    # the policy a Lambda retries with is the adapter's: 5 attempts, waits from 0.2 s
    # doubling up to 8 s, 1.5 s kept free of the invocation's deadline.
    policy = RestCrmClient("http://crm.invalid/", lambda: "t").transport.policy
    assert (policy.max_attempts, policy.backoff_base, policy.backoff_cap) == (5, 0.2, 8.0)
    assert (policy.budget_seconds, policy.margin_ms) == (10.0, 1500)


def test_a_post_without_an_idempotency_key_is_never_repeated(server: str, script: Script) -> None:
    # POST /contacts/batch/find carries no key: a 503 may hide a request that was served,
    # and only a request the CRM can recognise as a repeat is sent again.
    script.answer(503, {"message": "down"})
    with pytest.raises(TransientError):
        RestBatches(client(server)).find_batch("email", ["a@example.com"])
    assert [(s.method, s.path) for s in script.seen] == [("POST", "/api/contacts/batch/find")]


def test_what_the_factory_and_the_cli_give_the_adapter_is_what_it_uses() -> None:
    session, breaker = requests.Session(), CircuitBreaker()
    crm = RestCrmClient(
        "http://crm.invalid/",
        lambda: "t",
        retry_budget_seconds=3.0,
        margin_ms=700,
        session=session,
        breaker=breaker,
    )
    assert (crm.transport.policy.budget_seconds, crm.transport.policy.margin_ms) == (3.0, 700)
    assert crm.transport.session is session
    assert crm.transport.breaker is breaker
    assert RestCrmClient("http://crm.invalid", lambda: "t").transport.breaker is not None


def test_only_slashes_are_trimmed_from_the_base_url(server: str, script: Script) -> None:
    script.answer(200, [])
    client(server.replace("/api/", "/crmX/")).find_contacts(email="a@example.com")
    assert script.seen[0].path == "/crmX/contacts"


def test_a_refused_token_is_read_again_past_the_cache_and_the_retry_carries_it(
    server: str, script: Script
) -> None:
    script.answer(401, {"message": "bad token"})
    script.answer(200, [])
    token = Cached(lambda fresh: "tok-rotated" if fresh else "tok-cached")
    crm = RestCrmClient(server, token)
    assert crm.find_contacts(email="a@example.com") == []
    assert [s.headers["authorization"] for s in script.seen] == [
        "Bearer tok-cached",
        "Bearer tok-rotated",
    ]


def test_a_token_refused_twice_names_the_request(server: str, script: Script) -> None:
    script.answer(401, {"message": "bad token"})
    with pytest.raises(CredentialsRejected) as refused:
        client(server).find_contacts(email="a@example.com")
    assert refused.value.message.startswith("crm GET /contacts: HTTP 401: the CRM refused")


def test_a_refused_batch_lookup_masks_the_ids_it_sent(server: str, script: Script) -> None:
    # An Auth0 user id has no shape a pattern would mask: only knowing it was sent does.
    script.answer(400, {"message": "unknown ids: auth0|zq9"})
    with pytest.raises(CrmRejected) as refused:
        RestBatches(client(server)).find_batch("auth0_user_id", ["auth0|zq9"])
    assert "auth0|zq9" not in refused.value.message
    assert refused.value.message.startswith("crm POST /contacts/batch/find: HTTP 400: unknown")


@pytest.mark.parametrize(
    ("status", "unsure"),
    [(500, 1), (502, 1), (504, 1), (408, 1), (503, 0), (429, 0), (409, 0)],
)
def test_a_write_whose_answer_may_hide_a_change_is_counted_unsure(
    server: str, script: Script, status: int, unsure: int
) -> None:
    # A 503 or a 429 says the request was not processed; a 500, a 502, a 504 or a 408 does
    # not say: the write may still land (the next write waits for it).
    script.answer(status, {"message": "x"})
    crm = client(server, max_attempts=1)
    with pytest.raises((TransientError, CrmRejected)):
        crm.update_contact("c_1", {"name": "B"})
    assert crm.unsure_writes() == unsure
    with pytest.raises((TransientError, CrmRejected)):
        crm.find_contacts(email="a@example.com")  # a read is never unsure
    assert crm.unsure_writes() == unsure


def test_unsure_writes_add_up(server: str, script: Script) -> None:
    script.answer(500, {"message": "x"})
    crm = client(server, max_attempts=1)
    for _ in range(2):
        with pytest.raises(TransientError):
            crm.update_contact("c_1", {"name": "B"})
    assert crm.unsure_writes() == 2


@pytest.mark.parametrize(("status", "opens"), [(500, True), (408, True), (409, False)])
def test_a_server_error_or_a_request_timeout_is_an_outage_a_conflict_is_not(
    server: str, script: Script, status: int, opens: bool
) -> None:
    script.answer(status, {"message": "x"})
    breaker = CircuitBreaker(threshold=1)
    crm = client(server, max_attempts=1, breaker=breaker)
    with pytest.raises((TransientError, CrmRejected)):
        crm.update_contact("c_1", {"name": "B"})
    assert (breaker.opened == 1) is opens


def test_a_request_never_waits_past_the_invocations_deadline(server: str, script: Script) -> None:
    # 2.1 s left, 1.5 s of them kept free: the request may take 0.6 s, the server takes 1 s.
    script.answer(200, [])
    script.delay = 1.0
    crm = client(server, max_attempts=1)
    crm.set_deadline(lambda: 2100)
    with pytest.raises(TransientError) as late:
        crm.find_contacts(email="a@example.com")
    assert late.value.reason == "crm_timeout"


def test_a_request_gets_at_least_half_a_second(server: str, script: Script) -> None:
    script.answer(200, [])
    crm = client(server, max_attempts=1)
    crm.set_deadline(lambda: 1500)  # nothing left past the margin: still 0.5 s to answer
    assert crm.find_contacts(email="a@example.com") == []


def test_http_and_https_share_one_pooled_adapter_that_never_retries_by_itself() -> None:
    # The transport's loop is the only one that retries (it knows the deadline).
    session = RestCrmClient("https://crm.invalid", lambda: "t").transport.session
    adapter = session.get_adapter("https://crm.invalid/contacts")
    assert adapter is session.get_adapter("http://crm.invalid/contacts")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    assert adapter.max_retries.total == 0
