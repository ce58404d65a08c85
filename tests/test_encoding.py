"""bot/encoding.py: image work runs on its own bounded pool of threads, off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
import time

from bot.encoding import in_encoder


async def test_work_runs_on_a_bounded_pool_of_encoding_threads() -> None:
    def work() -> str:
        time.sleep(0.01)
        return threading.current_thread().name

    names = await asyncio.gather(*(in_encoder(work) for _ in range(4 * (os.cpu_count() or 2))))
    assert all(name.startswith("imagebot-encode") for name in names)
    assert threading.current_thread().name not in names  # never on the event loop's thread
    assert len(set(names)) <= (os.cpu_count() or 2)  # a burst of encodes queues instead of taking more threads
