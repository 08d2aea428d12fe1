"""The shared HTTP retry policy (`auth0_sync/destinations/transport.py`) against the
reference CRM on loopback (issue 28): a 429 is backpressure, never an outage, so it never
opens the circuit; what is retried, how often, how long it waits. Each test failed when
its rule was removed by hand. Sleeps go through the transport's injected `sleep` (recorded,
never slept), so no test waits.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
import requests

from auth0_sync.destinations.transport import (
    CircuitBreaker,
    HttpTransport,
    RetryPolicy,
    last_answer,
)
from auth0_sync.errors import InvalidEvent, PermanentError, TransientError
from auth0_sync_cli.crm_server import CrmServer
from tests.integration.crm_calls import TimeoutsSeen

pytestmark = pytest.mark.integration


class Rig:
    def __init__(self, crm: CrmServer, *, breaker: CircuitBreaker | None = None, **policy: object):
        self.crm = crm
        self.slept: list[float] = []
        self.transport = HttpTransport(
            "crm",
            RetryPolicy(jitter=False, **policy),  # type: ignore[arg-type]
            breaker=breaker,
            sleep=self.slept.append,
        )

    def get(self, *, repeatable: bool = True) -> requests.Response:
        return self.transport.request(
            "GET",
            f"{self.crm.base_url}/contacts",
            what="crm GET /contacts",
            repeatable=repeatable,
            headers={"Authorization": f"Bearer {self.crm.token}"},
            params={"email": "a@example.com"},
        )


def test_429s_never_open_the_circuit(crm: CrmServer) -> None:
    breaker = CircuitBreaker(threshold=2, cool_down=30.0)
    rig = Rig(crm, breaker=breaker, max_attempts=1)
    crm.set_outage(429)
    for _ in range(4):
        with pytest.raises(TransientError) as limited:
            rig.get()
        assert limited.value.reason == "crm_429"
    assert crm.stats()["total"] == 4  # every call reached the server
    assert breaker.opened == 0
    # The same number of 503s does open it: the next call fails fast.
    crm.set_outage(503)
    for _ in range(2):
        with pytest.raises(TransientError):
            rig.get()
    with pytest.raises(TransientError, match="circuit open after 2 failures"):
        rig.get()
    assert crm.stats()["total"] == 6
    assert breaker.opened == 1


def test_a_success_closes_the_count_of_a_transport(crm: CrmServer) -> None:
    breaker = CircuitBreaker(threshold=2, cool_down=30.0)
    rig = Rig(crm, breaker=breaker, max_attempts=1)
    crm.set_outage(503)
    with pytest.raises(TransientError):
        rig.get()
    crm.set_outage(None)
    assert rig.get().status_code == 200
    crm.set_outage(503)
    with pytest.raises(TransientError):
        rig.get()
    with pytest.raises(TransientError) as again:
        rig.get()
    assert again.value.message.endswith("after 1 attempt(s)")  # reached the server
    assert crm.stats()["total"] == 4


def test_a_retry_after_is_waited_and_the_attempts_are_counted(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=3)
    crm.set_outage(429)  # Retry-After: 1
    with pytest.raises(TransientError) as ended:
        rig.get()
    assert ended.value.reason == "crm_429"
    assert ended.value.message == "crm GET /contacts: HTTP 429 after 3 attempt(s)"
    assert rig.slept == [1.0, 1.0]
    assert rig.transport.retries == 2
    assert rig.transport.calls_made() == 3
    answer = last_answer(ended.value)
    assert answer is not None
    assert answer.status_code == 429


def test_without_a_hint_the_wait_is_the_exponential_backoff(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=4, backoff_base=0.25, backoff_cap=0.75)
    crm.set_outage(503)
    with pytest.raises(TransientError):
        rig.get()
    assert rig.slept == [0.5, 0.75, 0.75]  # 0.25 * 2**1, * 2**2 (capped), * 2**3 (capped)


def test_max_wait_caps_a_long_retry_after(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=2, max_wait=0.25)
    crm.set_outage(429)
    with pytest.raises(TransientError):
        rig.get()
    assert rig.slept == [0.25]


def test_a_wait_past_the_retry_budget_ends_the_retries(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=5, budget_seconds=0.9)
    crm.set_outage(429)  # Retry-After: 1, more than the budget
    with pytest.raises(TransientError) as ended:
        rig.get()
    assert ended.value.message == (
        "crm GET /contacts: HTTP 429; waiting 1.0s more would pass the 1s retry budget"
    )
    assert ended.value.reason == "crm_429"  # the answer's reason, for the DLQ and the redrive
    answer = last_answer(ended.value)
    assert answer is not None
    assert answer.status_code == 429
    assert rig.slept == []
    assert crm.stats()["total"] == 1


def test_a_wait_that_ends_just_at_the_retry_budget_is_waited(crm: CrmServer) -> None:
    """The budget ends the retries when a wait would *pass* it: a wait that uses it up
    exactly is still waited. The transport's clock stands still, so no time is spent."""
    slept: list[float] = []
    transport = HttpTransport(
        "crm",
        RetryPolicy(jitter=False, max_attempts=2, budget_seconds=1.0),
        sleep=slept.append,
        clock=lambda: 50.0,
    )
    crm.set_outage(429)  # Retry-After: 1, the whole budget
    with pytest.raises(TransientError) as ended:
        transport.request(
            "GET", f"{crm.base_url}/contacts", what="crm GET /contacts",
            headers={"Authorization": f"Bearer {crm.token}"},
        )  # fmt: skip
    assert ended.value.message == "crm GET /contacts: HTTP 429 after 2 attempt(s)"
    assert slept == [1.0]
    assert crm.stats()["total"] == 2


def test_a_wait_past_the_invocations_deadline_ends_the_retries(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=5, margin_ms=500)
    rig.transport.set_deadline(lambda: 1501)  # 1 s wait + 0.5 s margin fits, just
    crm.set_outage(429)
    with pytest.raises(TransientError, match=r"after 5 attempt\(s\)"):
        rig.get()
    assert rig.slept == [1.0, 1.0, 1.0, 1.0]
    rig.transport.set_deadline(lambda: 1500)  # no longer fits
    rig.slept.clear()
    with pytest.raises(TransientError) as ended:
        rig.get()
    assert ended.value.message == (
        "crm GET /contacts: HTTP 429; no time left in this invocation to wait 1.0s"
    )
    assert ended.value.reason == "crm_429"
    answer = last_answer(ended.value)
    assert answer is not None
    assert answer.status_code == 429
    assert rig.slept == []


def test_a_threads_deadline_is_its_own(crm: CrmServer) -> None:
    """Several users run at once in one invocation (a queue batch's lanes): one that ends
    (its deadline set to None) leaves the others' retries bound by the invocation's time."""
    rig = Rig(crm, max_attempts=5, margin_ms=500)
    rig.transport.set_deadline(lambda: 1500)  # this thread: no time left to wait
    other = threading.Thread(target=rig.transport.set_deadline, args=(None,))
    other.start()  # another lane ends its event
    other.join()
    crm.set_outage(429)
    with pytest.raises(TransientError, match="no time left in this invocation"):
        rig.get()
    assert rig.slept == []


def test_a_request_that_is_not_repeatable_is_sent_once(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=5)
    crm.set_outage(503)
    with pytest.raises(TransientError, match=r"HTTP 503 after 1 attempt\(s\)"):
        rig.get(repeatable=False)
    assert crm.stats()["total"] == 1


def test_an_answer_not_retried_is_returned_as_it_is(crm: CrmServer) -> None:
    rig = Rig(crm, max_attempts=5)
    crm.set_outage(404)
    assert rig.get().status_code == 404
    assert rig.slept == []


def test_a_url_that_is_not_one_is_a_configuration_error() -> None:
    transport = HttpTransport("crm", RetryPolicy(), config_hint="check CRM_BASE_URL")
    with pytest.raises(PermanentError) as bad:
        transport.request("GET", "no-scheme.example/contacts", what="crm GET /contacts")
    assert bad.value.reason == "crm_config"
    assert bad.value.message == "crm GET /contacts: MissingSchema: check CRM_BASE_URL"


def served(crm: CrmServer, total: int) -> None:
    """Wait (2 s at most) until the server has answered `total` requests: one the client
    gave up on is still being served, and must not land in the next test's counts."""
    deadline = time.monotonic() + 2.0
    while crm.stats()["total"] < total and time.monotonic() < deadline:
        time.sleep(0.02)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_server_is_an_outage_retried_unless_told_not_to() -> None:
    breaker = CircuitBreaker(threshold=2, cool_down=30.0)
    slept: list[float] = []
    url = f"http://127.0.0.1:{closed_port()}/contacts"
    policy = RetryPolicy(jitter=False, max_attempts=3, retry_unreachable=False)
    once = HttpTransport("crm", policy, breaker=breaker, sleep=slept.append)
    with pytest.raises(TransientError) as unreachable:
        once.request("GET", url, what="crm GET /contacts")
    assert (unreachable.value.reason, unreachable.value.message) == (
        "crm_unreachable",
        "crm GET /contacts: ConnectionError",
    )
    assert (once.calls_made(), slept) == (1, [])
    retried = HttpTransport("crm", RetryPolicy(jitter=False, max_attempts=2), sleep=slept.append)
    with pytest.raises(TransientError) as again:
        retried.request("GET", url, what="crm GET /contacts")
    assert again.value.message == "crm GET /contacts: ConnectionError after 2 attempt(s)"
    assert last_answer(again.value) is None
    # Unreachable counts as an outage: one more and the circuit is open.
    with pytest.raises(TransientError):
        once.request("GET", url, what="crm GET /contacts")
    assert breaker.opened == 1


def test_a_server_too_slow_to_answer_is_a_timeout(crm: CrmServer) -> None:
    crm.set_latency(400)
    transport = HttpTransport(
        "hubspot", RetryPolicy(max_attempts=1), timeout=0.1, sleep=lambda _: None
    )
    with pytest.raises(TransientError) as slow:
        transport.request("GET", f"{crm.base_url}/contacts", what="hubspot GET /contacts")
    assert slow.value.reason == "hubspot_timeout"
    assert slow.value.message.startswith("hubspot GET /contacts: ReadTimeout")
    served(crm, 1)


def test_values_that_are_not_json_are_the_events_fault_and_free_the_probe(
    crm: CrmServer,
) -> None:
    breaker = CircuitBreaker(threshold=1, cool_down=0.0)
    breaker.record(outage=True, reason="crm_503")  # open; the cool-down is over at once
    transport = HttpTransport("crm", RetryPolicy(), breaker=breaker)
    with pytest.raises(InvalidEvent) as invalid:
        transport.request(
            "POST", f"{crm.base_url}/contacts", what="crm POST /contacts",
            json={"name": float("nan")},
        )  # fmt: skip
    assert invalid.value.message == "crm POST /contacts: the values sent are not valid JSON"
    assert crm.stats()["total"] == 0
    breaker.before_call()  # the abandoned probe left the way free for the next one


def test_a_client_may_retry_an_answer_of_its_own_choosing(crm: CrmServer) -> None:
    slept: list[float] = []
    transport = HttpTransport(
        "crm",
        RetryPolicy(jitter=False, max_attempts=2, backoff_base=0.125),
        retryable=lambda response: response.status_code == 404,
        sleep=slept.append,
    )
    crm.set_outage(404)
    auth = {"Authorization": f"Bearer {crm.token}"}
    with pytest.raises(TransientError) as retried:
        transport.request("GET", f"{crm.base_url}/contacts", what="crm GET /contacts", headers=auth)
    assert retried.value.reason == "crm_404"
    assert slept == [0.25]
    transport.wait(0.5)  # the adapters' own waits go through the injected sleep too
    assert slept == [0.25, 0.5]


def test_a_retry_after_gets_a_little_jitter(crm: CrmServer) -> None:
    """So a burst of clients told the same Retry-After does not come back in lock step."""
    slept: list[float] = []
    transport = HttpTransport("crm", RetryPolicy(max_attempts=5), sleep=slept.append)
    crm.set_outage(429)  # Retry-After: 1
    with pytest.raises(TransientError):
        transport.request(
            "GET", f"{crm.base_url}/contacts", what="crm GET /contacts",
            headers={"Authorization": f"Bearer {crm.token}"},
        )  # fmt: skip
    assert len(slept) == 4
    assert all(1.0 <= wait <= 1.05 for wait in slept), slept
    assert slept != [1.0] * 4


def test_a_default_transport_names_its_failures_after_the_crm(crm: CrmServer) -> None:
    breaker = CircuitBreaker(threshold=1, cool_down=30.0)
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1), breaker=breaker)
    auth = {"Authorization": f"Bearer {crm.token}"}
    crm.set_outage(503)
    with pytest.raises(TransientError) as failed:
        transport.request("GET", f"{crm.base_url}/contacts", what="GET", headers=auth)
    assert failed.value.reason == "crm_503"
    with pytest.raises(TransientError) as open_circuit:  # the circuit keeps the reason
        transport.request("GET", f"{crm.base_url}/contacts", what="GET", headers=auth)
    assert open_circuit.value.reason == "crm_503"
    with pytest.raises(PermanentError) as config:
        HttpTransport().request("GET", "no-scheme/contacts", what="GET")
    assert config.value.message == "GET: MissingSchema: check CRM_BASE_URL"


def test_a_vendors_own_wait_hint_beats_the_backoff(crm: CrmServer) -> None:
    slept: list[float] = []
    transport = HttpTransport(
        "hubspot",
        RetryPolicy(jitter=False, max_attempts=2),
        wait_hint=lambda response: 0.3 if response.status_code == 503 else None,
        sleep=slept.append,
    )
    crm.set_outage(503)
    with pytest.raises(TransientError):
        transport.request(
            "GET", f"{crm.base_url}/contacts", what="GET",
            headers={"Authorization": f"Bearer {crm.token}"},
        )  # fmt: skip
    assert slept == [0.3]


def test_a_request_waits_its_timeout_or_what_the_invocation_has_left(crm: CrmServer) -> None:
    """Each request is sent with the transport's timeout (10 s unless told: the default of
    CRM_TIMEOUT_SECONDS), cut to the invocation's time left less the margin, never under
    half a second."""
    seen = TimeoutsSeen()
    auth = {"Authorization": f"Bearer {crm.token}"}

    def get(transport: HttpTransport) -> None:
        transport.request("GET", f"{crm.base_url}/contacts", what="GET", headers=auth)

    get(HttpTransport(session=seen.session()))
    short = HttpTransport(policy=RetryPolicy(margin_ms=1500), timeout=3.0, session=seen.session())
    get(short)  # no deadline
    short.set_deadline(lambda: 60_000)
    get(short)  # plenty of time
    short.set_deadline(lambda: 3_500)
    get(short)  # 3.5 s left, 1.5 s of them kept free
    short.set_deadline(lambda: 1_700)
    get(short)  # 0.2 s left after the margin: half a second all the same
    assert seen.timeouts == [10.0, 3.0, 3.0, 2.0, 0.5]


@pytest.mark.parametrize("method", ["HEAD", "head"])
def test_a_head_is_a_read_never_a_write_of_unknown_outcome(crm: CrmServer, method: str) -> None:
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1))
    auth = {"Authorization": f"Bearer {crm.token}"}
    crm.set_outage(502)  # a gateway's answer: a write may still land, a read changes nothing
    with pytest.raises(TransientError, match="HTTP 502"):
        transport.request(method, f"{crm.base_url}/contacts", what="HEAD", headers=auth)
    assert transport.unsure_writes() == 0
    with pytest.raises(TransientError, match="HTTP 502"):
        transport.request("POST", f"{crm.base_url}/contacts", what="POST", headers=auth, json={})
    assert transport.unsure_writes() == 1


def test_a_write_that_timed_out_after_leaving_is_of_unknown_outcome(crm: CrmServer) -> None:
    """The server got the request and may still apply it (contract: "After a 5xx or a
    timeout some operations may have been applied"); a read that timed out changes nothing."""
    crm.set_latency(400)
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1), timeout=0.1)
    auth = {"Authorization": f"Bearer {crm.token}"}
    with pytest.raises(TransientError, match="ReadTimeout"):
        transport.request("GET", f"{crm.base_url}/contacts", what="GET", headers=auth)
    assert transport.unsure_writes() == 0
    with pytest.raises(TransientError, match="ReadTimeout"):
        transport.request(
            "PATCH", f"{crm.base_url}/contacts/c_1", what="PATCH", headers=auth,
            json={"given_name": "Ada"},
        )  # fmt: skip
    assert transport.unsure_writes() == 1
    served(crm, 2)


@contextmanager
def nothing_listening() -> Iterator[str]:
    """A loopback URL whose port is held (bound) but not listening: a connection refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@contextmanager
def full_backlog() -> Iterator[str]:
    """A loopback URL whose server never accepts and whose accept queue is full: the
    kernel drops a new connection's SYN, so connecting times out."""
    with ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(address)
        yield f"http://127.0.0.1:{address[1]}"


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP/1.1 request whole (its headers, then Content-Length bytes of body);
    give its request line."""
    with conn.makefile("rb") as stream:
        line = stream.readline().rstrip(b"\r\n")
        length = 0
        while (header := stream.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        stream.read(length)
    return line


@contextmanager
def hanging_up(*, reset: bool) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback server that reads each request whole (headers and body), then hangs up
    without an answer: a close (FIN) or, with `reset`, an abort (RST: SO_LINGER 0). Gives
    its URL and the request lines it read."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    read: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                read.append(read_request(conn))
                if reset:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", read
    finally:
        stop.set()
        server.join(2.0)
        listener.close()


def test_a_write_refused_a_connection_never_left_so_is_not_of_unknown_outcome() -> None:
    """Nothing listens: no byte of the write was sent, so nothing can land later, and the
    user's next event need not wait for it. Still an outage, retried as before."""
    slept: list[float] = []
    transport = HttpTransport(policy=RetryPolicy(jitter=False, max_attempts=2), sleep=slept.append)
    with nothing_listening() as url, pytest.raises(TransientError) as refused:
        transport.request("POST", f"{url}/contacts", what="POST", json={"email": "a@example.com"})
    assert (refused.value.reason, refused.value.message) == (
        "crm_unreachable",
        "POST: ConnectionError after 2 attempt(s)",
    )
    assert (transport.calls_made(), len(slept)) == (2, 1)
    assert transport.unsure_writes() == 0


def test_a_write_whose_connection_timed_out_never_left() -> None:
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1), timeout=(0.1, 1.0))
    with full_backlog() as url, pytest.raises(TransientError, match="ConnectTimeout") as slow:
        transport.request("PATCH", f"{url}/contacts/c_1", what="PATCH", json={"name": "Ada"})
    assert slow.value.reason == "crm_timeout"
    assert transport.unsure_writes() == 0


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_write_whose_connection_was_lost_after_it_left_is_of_unknown_outcome(
    reset: bool,
) -> None:
    """The server read the whole request and hung up without an answer: it may have
    applied it, so the write is of unknown outcome (a read lost so changes nothing)."""
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1))
    with hanging_up(reset=reset) as (url, read):
        with pytest.raises(TransientError) as lost_read:
            transport.request("GET", f"{url}/contacts", what="GET")
        assert transport.unsure_writes() == 0
        with pytest.raises(TransientError) as lost_write:
            transport.request("POST", f"{url}/contacts", what="POST", json={"email": "a@x.org"})
        assert transport.unsure_writes() == 1
    assert read == [b"GET /contacts HTTP/1.1", b"POST /contacts HTTP/1.1"]
    assert [lost_read.value.reason, lost_write.value.reason] == ["crm_unreachable"] * 2
    assert lost_write.value.message == "POST: ConnectionError after 1 attempt(s)"


def test_an_open_circuit_keeps_the_reason_of_an_unreachable_server() -> None:
    """What is wrong with the server (`crm_unreachable`) stays the reason while the circuit
    is open: the DLQ and the redrive see the outage, not just that calls stopped."""
    breaker = CircuitBreaker(threshold=1, cool_down=30.0)
    transport = HttpTransport(policy=RetryPolicy(max_attempts=1), breaker=breaker)
    url = f"http://127.0.0.1:{closed_port()}/contacts"
    with pytest.raises(TransientError) as unreachable:
        transport.request("GET", url, what="GET")
    assert unreachable.value.reason == "crm_unreachable"
    with pytest.raises(TransientError) as open_circuit:
        transport.request("GET", url, what="GET")
    assert open_circuit.value.reason == "crm_unreachable"
    assert "circuit open after 1 failures in a row, the last crm_unreachable" in (
        open_circuit.value.message
    )
    assert transport.calls_made() == 1  # the second call never left


def test_an_open_circuit_keeps_the_reason_of_a_server_too_slow(crm: CrmServer) -> None:
    crm.set_latency(400)
    breaker = CircuitBreaker(threshold=1, cool_down=30.0, name="hubspot")
    transport = HttpTransport("hubspot", RetryPolicy(max_attempts=1), timeout=0.1, breaker=breaker)
    with pytest.raises(TransientError) as slow:
        transport.request("GET", f"{crm.base_url}/contacts", what="GET")
    assert slow.value.reason == "hubspot_timeout"
    with pytest.raises(TransientError, match="circuit open") as open_circuit:
        transport.request("GET", f"{crm.base_url}/contacts", what="GET")
    assert open_circuit.value.reason == "hubspot_timeout"
    assert transport.calls_made() == 1
    served(crm, 1)
