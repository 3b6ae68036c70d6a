"""The request gatherer: questions that arrive together are answered by one batched model call.

Why: `CalmQA.ask_batch` translates and samples all its questions in a few batched `generate` calls,
so eight users asking at once cost about what one batched call costs, not eight sequential ones.
The gatherer waits up to `wait_s` after the first question for others (up to `max_batch`), takes
the queued questions whose batch key matches the first one's (the options `ask_batch` takes once
per call: kind, languages, samples, mode, ...), and runs them in a single worker thread: the event
loop stays free to accept, stream and refuse requests while the model works, and the model only
ever sees one batch at a time.

The queue is bounded (`max_pending` questions queued or running): past it `submit` raises
`QueueFull` with a Retry-After estimate. A cancelled job (its client went away) leaves the queue at
once and never reaches the model; one already inside a running batch is answered and dropped.
`close` stops taking work and returns once everything taken is answered (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from calm_rag.progress import StageProgress

log = logging.getLogger(__name__)

RunBatch = Callable[[Any, Sequence[Any], StageProgress], Sequence[Any]]
"""(batch key, payloads, progress) -> one result per payload, in order; runs in the worker thread."""


class QueueFull(Exception):
    """The server holds `max_pending` questions already."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class ShuttingDown(Exception):
    """The server is draining for shutdown and takes no new questions."""


@dataclass(eq=False)
class Job:
    key: Hashable
    payload: Any
    future: asyncio.Future[Any]
    progress: StageProgress | None = None
    """Called in the event loop with (stage, done, total) while the job's batch works."""
    cancelled: bool = False


@dataclass
class BatchStats:
    batches: int = 0
    questions: int = 0
    seconds_ema: float = 1.0
    """Moving average of a batch's duration: the basis of Retry-After."""
    sizes: list[int] = field(default_factory=list)


class Batcher:
    def __init__(self, run: RunBatch, *, max_batch: int = 8, wait_s: float = 0.01, max_pending: int = 64,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.run = run
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.max_pending = max_pending
        self.on_batch = on_batch
        self.stats = BatchStats()
        self._queue: deque[Job] = deque()
        self._running: list[Job] = []
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="calm-rag-model")

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def accepting(self) -> bool:
        return self._task is not None and not self._closing

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="calm-rag-batcher")

    async def close(self) -> None:
        """Stop taking questions, answer every one already taken, then stop the worker."""
        self._closing = True
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    def submit(self, key: Hashable, payload: Any, progress: StageProgress | None = None) -> Job:
        """Queue one question; await `job.future` for its result. Raises `QueueFull` or `ShuttingDown`."""
        if not self.accepting:
            raise ShuttingDown("the server is shutting down")
        if self.queued + self.running >= self.max_pending:
            raise QueueFull(self.retry_after())
        job = Job(key, payload, asyncio.get_running_loop().create_future(), progress)
        self._queue.append(job)
        self._idle.clear()
        self._arrived.set()
        return job

    def cancel(self, job: Job) -> bool:
        """The client is gone: a queued job leaves the queue now (freeing its slot and never reaching the
        model); a running one is answered with its batch and the answer dropped. True when it was queued."""
        job.cancelled = True
        queued = job in self._queue
        if queued:
            self._queue.remove(job)
            self._set_idle_if_done()
        if not job.future.done():
            job.future.cancel()
        return queued

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the batches ahead of a new question times their duration."""
        ahead = math.ceil((self.queued + self.running) / self.max_batch)
        return max(1, math.ceil(ahead * self.stats.seconds_ema))

    # ---- the worker -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            await self._gather(loop)
            batch = self._take()
            if batch:
                await self._answer(loop, batch)
            self._set_idle_if_done()

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait up to `wait_s` from now for the first job's batch to fill (or the server to close)."""
        deadline = loop.time() + self.wait_s
        while self._queue and not self._closing:
            key = self._queue[0].key
            if sum(1 for job in self._queue if job.key == key) >= self.max_batch:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _take(self) -> list[Job]:
        """The first queued job and the next ones with its key, up to `max_batch`, out of the queue."""
        if not self._queue:
            return []
        key = self._queue[0].key
        batch = [job for job in self._queue if job.key == key][:self.max_batch]
        for job in batch:
            self._queue.remove(job)
        return batch

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[Job]) -> None:
        self._running = batch

        def fan_out(stage: str, done: int, total: int) -> None:
            for job in batch:
                if job.progress is not None and not job.cancelled:
                    job.progress(stage, done, total)

        def report(stage: str, done: int, total: int) -> None:  # called in the worker thread
            loop.call_soon_threadsafe(fan_out, stage, done, total)

        started = time.perf_counter()
        try:
            outcomes = await loop.run_in_executor(self._executor, self._run_guarded, batch[0].key,
                                                  [job.payload for job in batch], report)
        finally:
            self._running = []
        seconds = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.questions += len(batch)
        self.stats.sizes.append(len(batch))
        self.stats.seconds_ema = seconds if self.stats.batches == 1 else 0.8 * self.stats.seconds_ema + 0.2 * seconds
        if self.on_batch is not None:
            self.on_batch(len(batch), seconds)
        for job, outcome in zip(batch, outcomes):
            if job.future.done():
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

    def _run_guarded(self, key: Any, payloads: list[Any], report: StageProgress) -> list[Any]:
        """The batch's results; when the batch fails, each question is retried alone, so one question that
        trips the pipeline gets the error and the others their answers."""
        try:
            results = list(self.run(key, payloads, report))
        except Exception as error:  # noqa: BLE001 - handed to the waiting request, which maps it to a status
            if len(payloads) == 1:
                return [error]
            log.warning("a batch of %d questions failed (%s: %s); answering them one by one", len(payloads),
                        type(error).__name__, error)
            return [self._run_guarded(key, [payload], report)[0] for payload in payloads]
        if len(results) != len(payloads):
            return [RuntimeError(f"the batch returned {len(results)} results for {len(payloads)} questions")
                    for _ in payloads]
        return results

    def _set_idle_if_done(self) -> None:
        if not self._queue and not self._running:
            self._idle.set()
