"""adapter.tasks.TaskSet: background tasks are kept, their failures logged, cancelled on stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adapter.tasks import TaskSet


async def test_a_failure_is_logged_with_the_owner_and_task_name(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("driver")

    async def boom() -> None:
        raise RuntimeError("lost the channel")

    task = tasks.spawn(boom(), "call CA1")
    await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0)  # the done-callback runs on the next loop iteration
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == ["background task driver:call CA1 failed"]
    assert failures[0].exc_info is not None and "lost the channel" in str(failures[0].exc_info[1])
    assert len(tasks) == 0


async def test_cancel_all_ends_running_tasks_without_logging_them(
        caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("outbox")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = tasks.spawn(forever(), "worker")
    await started.wait()
    await tasks.cancel_all()
    assert task.cancelled()
    assert len(tasks) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_wait_covers_tasks_spawned_by_tasks() -> None:
    tasks = TaskSet("recorder")
    done: list[str] = []

    async def second() -> None:
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0)
        tasks.spawn(second(), "second")
        done.append("first")

    tasks.spawn(first(), "first")
    await tasks.wait()
    assert done == ["first", "second"]
    assert len(tasks) == 0


async def test_spawn_returns_the_task_with_its_result() -> None:
    tasks = TaskSet("service")

    async def answer() -> int:
        return 42

    assert await tasks.spawn(answer(), "answer") == 42
