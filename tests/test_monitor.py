"""bot/monitor.py: the slow-callback watcher names what held the event loop, and the log lines read back."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest

from bot.monitor import SlowCallbacks, blockers, held_line


async def hold_the_loop(seconds: float) -> None:
    await asyncio.sleep(0)
    time.sleep(seconds)  # noqa: ASYNC251  # what a blocking call does to every other task
    await asyncio.sleep(0)


async def test_a_callback_over_the_threshold_is_named_by_its_coroutine_and_line() -> None:
    held: list[tuple[str, float]] = []
    watcher = SlowCallbacks(0.02, on_slow=lambda where, seconds: held.append((where, seconds))).start()
    try:
        await asyncio.create_task(hold_the_loop(0.03))
        await asyncio.create_task(hold_the_loop(0))
        await asyncio.create_task(hold_the_loop(0.03), name="on_progress")
    finally:
        watcher.stop()
    [(where, seconds), (named, _)] = held
    assert where.startswith("hold_the_loop at tests/test_monitor.py:") and where.endswith("(hold_the_loop)"), where
    assert seconds >= 0.03
    assert named.startswith("hold_the_loop [on_progress] at tests/test_monitor.py:"), named


async def test_a_callback_held_by_garbage_collection_is_named_so() -> None:
    held: list[str] = []
    cycles = [[] for _ in range(300_000)]
    for cycle in cycles:
        cycle.append(cycle)

    async def collect() -> None:
        gc.collect()

    watcher = SlowCallbacks(0.001, on_slow=lambda where, seconds: held.append(where)).start()
    try:
        await asyncio.create_task(collect())
    finally:
        watcher.stop()
    assert "garbage collection (generation 2)" in held


async def test_stopping_the_last_watcher_unwraps_the_loop() -> None:
    unwrapped = asyncio.Handle._run
    first, second = SlowCallbacks().start(), SlowCallbacks().start()
    assert asyncio.Handle._run is not unwrapped
    first.stop()
    assert asyncio.Handle._run is not unwrapped  # the other one still watches
    second.stop()
    assert asyncio.Handle._run is unwrapped


async def test_by_default_each_slow_callback_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    watcher = SlowCallbacks(0.02).start()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.monitor"):
            await asyncio.create_task(hold_the_loop(0.03))
    finally:
        watcher.stop()
    [line] = [record.getMessage() for record in caplog.records if record.name == "bot.monitor"]
    assert line.startswith("event loop held ") and "hold_the_loop" in line


def test_log_lines_read_back_as_the_places_that_held_the_loop_longest_first() -> None:
    lines = [
        f"[2026-01-01 00:00:00] [WARNING ] bot.monitor: {held_line('A at cogs/a.py:1 (a)', 0.030)}",
        "[2026-01-01 00:00:00] [INFO    ] bot.queue: something else",
        held_line("B at bot/b.py:2 (b)", 0.025),
        held_line("B at bot/b.py:2 (b)", 0.021),
    ]
    top = blockers(lines)
    assert [(b.where, b.count, round(b.total * 1000), round(b.worst * 1000)) for b in top] == [
        ("B at bot/b.py:2 (b)", 2, 46, 25), ("A at cogs/a.py:1 (a)", 1, 30, 30)]
