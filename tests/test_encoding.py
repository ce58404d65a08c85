"""bot/encoding.py: image work runs on its own threads, leaving the event loop a core."""

from __future__ import annotations

import os
import threading

from bot.encoding import ENCODE_THREADS, in_encoder


async def test_work_runs_on_the_encoding_threads_and_leaves_a_core() -> None:
    name = await in_encoder(lambda: threading.current_thread().name)
    assert name.startswith("imagebot-encode")
    assert max(1, (os.cpu_count() or 2) - 1) == ENCODE_THREADS
