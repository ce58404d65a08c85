"""Where image encoding runs: a few threads of its own, one core fewer than the machine has.

Every result goes through Pillow's PNG encoder (and every progress preview through JPEG). Pillow releases the GIL
while it compresses, so threads use the other cores; but the event loop needs a core too, or heartbeats,
interaction acknowledgements and button answers wait behind the encoder. Sharing asyncio's default executor
(``asyncio.to_thread``: cores + 4 threads) let encodes take both cores of a 2-core machine and tripled the loop's
worst lag in bench/results.py; this pool keeps ``cores - 1`` (at least one) for them.
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

ENCODE_THREADS = max(1, (os.cpu_count() or 2) - 1)
_pool = ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="imagebot-encode")


async def in_encoder(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``await asyncio.to_thread(function, ...)``, on the encoding threads."""
    return await asyncio.get_running_loop().run_in_executor(_pool, functools.partial(function, *args, **kwargs))
