"""Events of many users at once, each user's in order: `Lanes` runs jobs on N threads
("lanes"), every job of one key (a user) on the same lane, in the order it was submitted.
Different users run at once, so a target with batch calls (`auth0_sync.gathering`) carries their CRM
calls in batches, while one user's events still apply one after the other, in order, as
the exactly-once rules expect (`catch-up`).

`done_through()` is how many of the first jobs are all done: what a resumable command
may record as its progress (an interrupted run resumes after it, so no job is skipped).

A key's lane is its hash by default (no memory per key: a catch-up meets millions of
users); `lane_of` places keys itself when they are known up front (a queue batch gives each
user a lane of its own, `auth0_sync.queue_batches`)."""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable

Job = Callable[[], None]


class Lanes:
    """`workers` lanes, each a thread running its jobs in order; `depth` jobs queue per
    lane at most (the submitter waits beyond: memory stays bounded)."""

    def __init__(
        self, workers: int, *, depth: int = 64, lane_of: Callable[[str], int] | None = None
    ) -> None:
        self.workers = max(1, workers)
        self._lane_of = lane_of
        self._queues: list[queue.Queue[tuple[int, Job] | None]] = [
            queue.Queue(depth) for _ in range(self.workers)
        ]
        self._lock = threading.Lock()
        self._submitted = 0
        self._done: set[int] = set()
        self._through = 0
        self._error: BaseException | None = None
        self._stopped = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"lane-{n}", daemon=True)
            for n, q in enumerate(self._queues)
        ]
        for thread in self._threads:
            thread.start()

    def lane_of(self, key: str) -> int:
        if self._lane_of is not None:
            return self._lane_of(key) % self.workers
        return zlib.crc32(key.encode("utf-8")) % self.workers

    def submit(self, key: str, job: Job) -> int:
        """Queue `job` behind the earlier jobs of `key`; its sequence number. A job that
        failed before is raised here (the rest stops)."""
        self._raise_failure()
        seq = self._submitted
        self._submitted += 1
        self._queues[self.lane_of(key)].put((seq, job))
        return seq

    def done_through(self) -> int:
        """How many of the first jobs submitted are all done."""
        with self._lock:
            return self._through

    def submitted(self) -> int:
        return self._submitted

    def close(self, *, stop: bool = False) -> None:
        """Wait for every queued job (`stop`: drop the jobs not started yet), then raise
        a job's failure, if one failed."""
        if stop:
            self._stopped.set()
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()
        if not stop:
            self._raise_failure()

    def _raise_failure(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def _work(self, jobs: queue.Queue[tuple[int, Job] | None]) -> None:
        while (item := jobs.get()) is not None:
            seq, job = item
            if self._stopped.is_set():
                continue
            try:
                job()
            except BaseException as exc:  # the run stops; the submitter raises it
                with self._lock:
                    self._error = self._error or exc
                self._stopped.set()
                continue
            with self._lock:
                self._done.add(seq)
                while self._through in self._done:
                    self._done.discard(self._through)
                    self._through += 1
