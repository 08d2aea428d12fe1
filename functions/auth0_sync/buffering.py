"""The buffered topology's numbers, stated once: the stack sizes each type's queue and event
source mapping with them, and `process --topology buffered` drains its local queues alike.

Buffered (CDK context `topology=buffered`): each rule sends its events to a queue of its
own, and the type's function reads that queue in batches, with at most `max_concurrency`
batches in flight: a burst (a bulk import, a migration) waits in the queue instead of
meeting the CRM's rate limit in retries and the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from auth0_sync.names import FUNCTION_TIMEOUT_SECONDS, CrmType


class Topology(StrEnum):
    """How events reach the handlers (CDK context `topology`, `process --topology`)."""

    # Each event is its own asynchronous invocation (the rule targets the function).
    DIRECT = "direct"
    # The rule targets a queue; the function reads it in batches (an event source mapping).
    BUFFERED = "buffered"


# SQS moves a message to the DLQ on its receive after this many (the queue's redrive policy).
# AWS recommends at least 5 for a queue a Lambda function reads: a throttled batch counts a
# receive too. On its last receive the handler itself sends a transiently failing event to
# the DLQ, with its reason (auth0_sync.queue_batches).
MAX_RECEIVE_COUNT = 5

# An event waits this long in a queue at most before the function receives it.
QUEUE_RETENTION_DAYS = 4


@dataclass(frozen=True)
class BufferSizing:
    """One type's event source mapping for a destination."""

    # Records per batch (the mapping's BatchSize): its users at once, their CRM calls in
    # the destination's batch calls (auth0_sync.queue_batches).
    batch_size: int
    # Seconds the mapping gathers records before it invokes (MaximumBatchingWindowInSeconds):
    # the latency a quiet queue adds to an event.
    batching_window_seconds: int
    # Batches in flight at once for the type (ScalingConfig.MaximumConcurrency, 2 to 1000).
    max_concurrency: int

    @property
    def visibility_timeout_seconds(self) -> int:
        """AWS: at least six times the function's timeout (a throttled batch is retried
        within it), plus the batching window the records wait in before the invocation."""
        return 6 * FUNCTION_TIMEOUT_SECONDS + self.batching_window_seconds


# Sized to each destination's documented limit. An event costs 1 to 3 CRM calls one after
# the other (~0.1-0.3 s each); a batch must end well inside the function's 30 s.
SIZING: dict[CrmType, BufferSizing] = {
    # HubSpot: 100 requests per 10 s per private app (Free/Starter; 190 on Professional and
    # Enterprise), search 5 per second (the adapter keeps to 4). Two batches in flight
    # (the mapping's least) make about 10 calls a second between them: the adapter's
    # rolling limit paces the rest.
    CrmType.HUBSPOT: BufferSizing(batch_size=25, batching_window_seconds=5, max_concurrency=2),
    # Salesforce: a daily allowance of API requests and at most 25 long-running requests at
    # once per org; no per-second limit.
    CrmType.SALESFORCE: BufferSizing(batch_size=50, batching_window_seconds=5, max_concurrency=5),
    # The generic contract: its server's own 429s are honoured; five batches in flight is the
    # handlers' default reserved concurrency.
    CrmType.REST: BufferSizing(batch_size=50, batching_window_seconds=5, max_concurrency=5),
}

# Lambda's MaximumConcurrency of an SQS event source mapping takes 2 to 1000.
MIN_MAPPING_CONCURRENCY = 2
