"""One host pass split into row ranges that run side by side on the machine's cores.

numpy releases the GIL inside its loops over large arrays, so the strips of two row ranges
really run at once. Each range's work writes its own rows (or returns its own pieces, joined
in row order by the caller), so the result is the same bytes with one thread or several.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading

MAX_HOST_THREADS = 4  # beyond this the passes are bound by memory bandwidth, not by cores
MIN_RANGE_PIXELS = 1 << 20  # smaller ranges are not worth a thread (~1 M px, about a millisecond a pass)

HOST_THREADS_VARIABLE = "DARTS_HOST_THREADS"

_limit: int | None = None
_running = 0  # host passes running in this process now (host_pass)
_running_lock = threading.Lock()
_this_thread = threading.local()  # .alone: this thread's passes run in it alone (passes_alone)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def host_threads() -> int:
    """Threads a host pass may use: the usable cores (at most MAX_HOST_THREADS), fewer where
    limit_host_threads said so (e.g. several worker processes sharing the cores) or the
    environment variable DARTS_HOST_THREADS (a positive integer) does (e.g. a dask worker given
    one core)."""
    threads = min(usable_cores(), MAX_HOST_THREADS)
    for limit in (_limit, os.environ.get(HOST_THREADS_VARIABLE, "").strip()):
        with contextlib.suppress(TypeError, ValueError):
            if limit and int(limit) > 0:
                threads = min(threads, int(limit))
    return threads


def limit_host_threads(count: int | None) -> None:
    """Let this process's host passes use at most `count` threads (None: the usable cores)."""
    global _limit
    _limit = None if count is None else max(1, int(count))


def passes_alone() -> None:
    """From now on, host passes started in this thread run in it alone: for the threads of a
    pool that computes blocks side by side already (dask's local scheduler)."""
    _this_thread.alone = True


@contextlib.contextmanager
def host_pass():
    """The threads granted to one host pass: host_threads() when no other pass of this process
    is running (and the thread is not one of passes_alone), else 1. Passes started side by side
    then share the cores instead of each starting a pool of its own."""
    global _running
    with _running_lock:
        granted = host_threads() if _running == 0 and not getattr(_this_thread, "alone", False) else 1
        _running += 1
    try:
        yield granted
    finally:
        with _running_lock:
            _running -= 1


def over_row_ranges(height: int, width: int, work) -> list:
    """[work(rows) for consecutive row slices covering range(height)], the slices run in the
    threads host_pass() grants (the first in this one); one slice when the image is small.
    The first error raised is raised here, once every range has stopped."""
    with host_pass() as granted:
        threads = max(1, min(granted, height * max(width, 1) // MIN_RANGE_PIXELS, height))
        bounds = [height * part // threads for part in range(threads + 1)]
        ranges = [slice(top, bottom) for top, bottom in zip(bounds, bounds[1:])]
        if threads == 1:
            return [work(ranges[0])]
        with concurrent.futures.ThreadPoolExecutor(threads - 1, thread_name_prefix="host pass") as pool:
            others = [pool.submit(work, rows) for rows in ranges[1:]]
            try:
                first = work(ranges[0])
            finally:
                concurrent.futures.wait(others)
            return [first, *(future.result() for future in others)]


def each_in_threads(work, items: list, threads: int) -> list:
    """[work(item) for item in items], up to `threads` at once (in order; the first error raised
    is raised here, once every started item has stopped)."""
    threads = min(threads, len(items))
    if threads <= 1:
        return [work(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="host pass") as pool:
        return list(pool.map(work, items))
