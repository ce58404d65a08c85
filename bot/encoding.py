"""Where image encoding runs: a pool of its own, one thread per core.

Every result goes through Pillow's PNG encoder (and every progress preview through JPEG). Pillow releases the GIL
while it compresses, so the threads run on every core while the event loop keeps answering: in bench/results.py
on 2 cores the loop's worst lag stayed under 10 ms with both cores encoding, and leaving a core idle halved the
images per second. A pool of its own (not asyncio's default executor, shared with file and database work) keeps a
burst of encodes from queueing that other work behind it, and bounds how many images are being encoded at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

ENCODE_THREADS = os.cpu_count() or 2
_pool = ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="imagebot-encode")


async def in_encoder(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await asyncio.to_thread(function, ...)``, on the encoding threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(function, *args, **kwargs))
