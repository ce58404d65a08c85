"""The one thread a process runs its engine on, at a lower CPU priority than the event loop beside it.

The engine is throughput work; the event loop (Discord's acks and heartbeats, a replica's streaming) is latency
work. When both want a core, the operating system should run the loop first: on Linux a thread's nice value is its
own, so the worker raises it by ``ENGINE_NICENESS`` as it starts. torch's intra-op threads are created by the thread
that first runs a parallel operation, and inherit its nice value, so the whole engine yields. On a GPU the engine
thread mostly waits for the device, and this costs nothing; on a CPU it keeps the loop's wake-ups on time while
images are made (bench/load.py). Raising one's own nice value needs no privileges; elsewhere it is left alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

ENGINE_NICENESS = 5
"""A nice value of 5 gets about a third of the CPU share of a thread at 0 when both are busy: the loop first, with
the engine still running at full speed whenever the loop has nothing to do."""


def engine_executor() -> ThreadPoolExecutor:
    """A single worker thread named ``engine``, for one pipeline call at a time."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine", initializer=_yield_to_the_loop)


def _yield_to_the_loop() -> None:
    if sys.platform != "linux":  # elsewhere the nice value belongs to the whole process
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + ENGINE_NICENESS)
    except OSError as error:  # a sandbox that forbids it: the engine runs at the loop's priority, as before
        log.info("could not lower the engine thread's priority: %s", error)
