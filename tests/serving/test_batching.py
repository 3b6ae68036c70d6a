"""The request gatherer on its own: batches by key and size, bounded queue, cancellation, failures, draining."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from calm_rag.progress import StageProgress
from calm_rag.serving.batching import Batcher, QueueFull, ShuttingDown


class Recorder:
    """A batch function that records each call's key and payloads and answers 'key:payload'; it can be held
    at a gate (to pile requests up behind a running batch) and fails on payloads named 'bad'."""

    def __init__(self, gated: bool = False) -> None:
        self.calls: list[tuple[Any, list[Any]]] = []
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Event()

    def __call__(self, key: Any, payloads: Sequence[Any], progress: StageProgress) -> list[str]:
        self.entered.set()
        assert self.gate.wait(10)
        self.calls.append((key, list(payloads)))
        if "bad" in payloads:
            raise ValueError("bad payload")
        progress("sampling", 1, 2)
        progress("sampling", 2, 2)
        return [f"{key}:{payload}" for payload in payloads]


async def _wait_entered(recorder: Recorder) -> None:
    while not recorder.entered.is_set():
        await asyncio.sleep(0.005)


def test_questions_arriving_together_share_one_call_and_get_their_own_results() -> None:
    recorder = Recorder()

    async def scenario() -> list[Any]:
        batcher = Batcher(recorder, max_batch=8, wait_s=0.05)
        batcher.start()
        jobs = [batcher.submit("k", number) for number in range(5)]
        results = await asyncio.gather(*(job.future for job in jobs))
        await batcher.close()
        return results

    assert asyncio.run(scenario()) == [f"k:{number}" for number in range(5)]
    assert recorder.calls == [("k", [0, 1, 2, 3, 4])]


def test_batches_hold_one_key_and_at_most_max_batch() -> None:
    recorder = Recorder(gated=True)

    async def scenario() -> list[Any]:
        batcher = Batcher(recorder, max_batch=2, wait_s=0.0)
        batcher.start()
        first = batcher.submit("a", 0)
        await _wait_entered(recorder)  # 'a:0' is running; the rest queue up behind it
        jobs = [batcher.submit(key, number) for number, key in enumerate("abab", start=1)]
        jobs.append(batcher.submit("a", 5))
        recorder.gate.set()
        results = await asyncio.gather(first.future, *(job.future for job in jobs))
        await batcher.close()
        return results

    assert asyncio.run(scenario()) == ["a:0", "a:1", "b:2", "a:3", "b:4", "a:5"]
    assert recorder.calls == [("a", [0]), ("a", [1, 3]), ("b", [2, 4]), ("a", [5])]


def test_a_full_queue_refuses_with_a_retry_after() -> None:
    recorder = Recorder(gated=True)

    async def scenario() -> QueueFull:
        batcher = Batcher(recorder, max_batch=1, wait_s=0.0, max_pending=2)
        batcher.start()
        jobs = [batcher.submit("k", 0)]
        await _wait_entered(recorder)
        jobs.append(batcher.submit("k", 1))
        with pytest.raises(QueueFull) as refused:
            batcher.submit("k", 2)
        recorder.gate.set()
        await asyncio.gather(*(job.future for job in jobs))
        assert batcher.submit("k", 3) is not None  # room again once the queue moved
        await batcher.close()
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.retry_after >= 1
    assert [payloads for _, payloads in recorder.calls] == [[0], [1], [3]]


def test_a_cancelled_queued_question_never_reaches_the_model_and_frees_its_slot() -> None:
    recorder = Recorder(gated=True)

    async def scenario() -> tuple[bool, bool]:
        batcher = Batcher(recorder, max_batch=4, wait_s=0.0, max_pending=2)
        batcher.start()
        running = batcher.submit("k", "running")
        await _wait_entered(recorder)
        gone = batcher.submit("k", "gone")
        was_queued = batcher.cancel(gone)
        replacement = batcher.submit("k", "next")  # the freed slot takes a new question at once
        recorder.gate.set()
        await asyncio.gather(running.future, replacement.future)
        await batcher.close()
        return was_queued, gone.future.cancelled()

    assert asyncio.run(scenario()) == (True, True)
    assert [payloads for _, payloads in recorder.calls] == [["running"], ["next"]]


def test_one_failing_question_fails_alone() -> None:
    recorder = Recorder(gated=True)

    async def scenario() -> list[Any]:
        batcher = Batcher(recorder, max_batch=4, wait_s=0.0)
        batcher.start()
        first = batcher.submit("k", "first")
        await _wait_entered(recorder)
        jobs = [batcher.submit("k", payload) for payload in ("x", "bad", "y")]
        recorder.gate.set()
        results = await asyncio.gather(first.future, *(job.future for job in jobs), return_exceptions=True)
        await batcher.close()
        return results

    first, x, bad, y = asyncio.run(scenario())
    assert (first, x, y) == ("k:first", "k:x", "k:y")
    assert isinstance(bad, ValueError)


def test_progress_reaches_every_question_of_the_batch_in_order() -> None:
    recorder = Recorder()
    seen: dict[int, list[tuple[str, int, int]]] = {0: [], 1: []}

    async def scenario() -> None:
        batcher = Batcher(recorder, max_batch=4, wait_s=0.05)
        batcher.start()
        jobs = [batcher.submit("k", n, lambda stage, done, total, n=n: seen[n].append((stage, done, total)))
                for n in (0, 1)]
        await asyncio.gather(*(job.future for job in jobs))
        await batcher.close()

    asyncio.run(scenario())
    assert seen[0] == seen[1] == [("sampling", 1, 2), ("sampling", 2, 2)]


def test_close_answers_what_it_took_and_refuses_the_rest() -> None:
    recorder = Recorder(gated=True)

    async def scenario() -> list[Any]:
        batcher = Batcher(recorder, max_batch=1, wait_s=0.0)
        batcher.start()
        jobs = [batcher.submit("k", n) for n in range(3)]
        await _wait_entered(recorder)
        closing = asyncio.ensure_future(batcher.close())
        await asyncio.sleep(0.01)
        with pytest.raises(ShuttingDown):
            batcher.submit("k", 99)
        assert not closing.done()  # still answering the three it took
        recorder.gate.set()
        await closing
        return [job.future.result() for job in jobs]

    assert asyncio.run(scenario()) == ["k:0", "k:1", "k:2"]
