"""Where the tiles of a run are processed: in this process, in worker processes (as many as
cores and memory allow, `worker_count`) or on dask.distributed workers, with a heartbeat for
progress and cancel, and no worker left behind when the run ends or fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import types
from collections.abc import Callable

from ..files.gdal import open_read_only
from ..kernels.threads import limit_host_threads, usable_cores
from .tiles import TILE_BYTES_PER_PIXEL, TileResult, process_tile, read_tile_inputs


# -- running many tiles --------------------------------------------------------------------
def python_for_workers() -> str:
    """The Python that worker processes start: this process's own interpreter. Inside QGIS
    `sys.executable` is QGIS itself (qgis, qgis_process) or whatever `python3` comes first on
    PATH (embedded Python guesses), so it counts only when it lies in this Python's prefix."""
    prefix = os.path.abspath(sys.exec_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, os.path.join(sys.exec_prefix, "bin", f"python{version}"),
                  os.path.join(sys.exec_prefix, "bin", "python3"), os.path.join(sys.exec_prefix, "python.exe")]
    for candidate in candidates:
        if (candidate and os.path.basename(candidate).lower().startswith("python") and os.path.isfile(candidate)
                and os.access(candidate, os.X_OK)
                and os.path.commonpath([os.path.abspath(candidate), prefix]) == prefix):
            return candidate
    raise RuntimeError(f"no Python {version} found in {sys.exec_prefix} to start worker processes with: set WORKERS "
                       f"to 1")


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's MemAvailable; else free pages);
    None when unknown."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo") as handle:
            return int(next(line for line in handle if line.startswith("MemAvailable:")).split()[1]) * 1024
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def worker_count(requested: int, sources, available: int | None = None) -> tuple[int, str | None]:
    """(worker processes to start, a sentence when fewer than `requested`): never more than
    the tiles, the usable cores, or the tiles whose processing fits in `available` bytes
    (default: the memory available now) at once, the largest tile counted for each."""
    count = max(1, min(requested, len(sources), usable_cores()))
    reasons = []
    if requested > len(sources):
        reasons.append(f"{len(sources)} tile{'s' if len(sources) != 1 else ''}")
    if requested > usable_cores():
        reasons.append(f"{usable_cores()} usable cores")
    available = available_memory() if available is None else available
    if count > 1 and available:
        pixels = 0
        for source in sources:
            with contextlib.suppress(RuntimeError, AttributeError), open_read_only(source.probabilities) as dataset:
                pixels = max(pixels, dataset.RasterXSize * dataset.RasterYSize)
        need = pixels * TILE_BYTES_PER_PIXEL
        if need and count * need > available:
            count = max(1, int(available // need))
            reasons.append(f"each tile needs about {need / 2**30:.1f} GB and {available / 2**30:.1f} GB are available")
    if count >= requested:
        return count, None
    return count, f"WORKERS={requested} lowered to {count}: {'; '.join(reasons)}"


def run_tiles(jobs, workers: int = 1, client=None, heartbeat: Callable[[], None] | None = None):
    """Yield process_tile(*job) of every job as tiles finish: in this process (workers 1, no
    client), in `workers` processes, or on a dask.distributed `client`'s workers.
    `heartbeat()` is called while waiting; it may raise to cancel (running tiles are stopped)."""
    beat = heartbeat or (lambda: None)
    if client is None and workers <= 1:
        yield from _in_this_process(jobs, beat)
        return
    if client is not None:
        futures = [client.submit(process_tile, *job, pure=False) for job in jobs]
        try:
            for _, result in _as_finished(dict(zip(futures, jobs)), beat):
                yield result
        finally:
            client.cancel(futures)  # tiles already running on a worker still finish there
        return
    yield from _in_worker_processes(jobs, workers, beat)


def _in_this_process(jobs, beat):
    """run_tiles in this process, one tile after the other; the next tile is read (GDAL's
    decompression and the decoding release the GIL) on a second core while this one is
    processed, when memory allows a second tile's inputs (see read_ahead)."""
    import concurrent.futures

    jobs = list(jobs)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="reading the next tile") as reader:
        upcoming = None
        for index, job in enumerate(jobs):
            beat()
            read = upcoming.result if upcoming is not None else None
            upcoming = None
            if index + 1 < len(jobs) and read_ahead(jobs[index + 1][0], job[0]):
                source, settings = jobs[index + 1][:2]
                upcoming = reader.submit(read_tile_inputs, source, settings)
            yield process_tile(*job, progress=lambda fraction, message: beat(), read=read)
            del read


def read_ahead(source, current, available: int | None = None) -> bool:
    """Whether the tile `source` may be read while the tile `current` is processed: when the
    memory available now (default) holds two tiles' processing, the larger counted twice
    (TILE_BYTES_PER_PIXEL each)."""
    available = available_memory() if available is None else available
    if not available:
        return False
    pixels = 0
    for tile in (source, current):
        with contextlib.suppress(RuntimeError, AttributeError), open_read_only(tile.probabilities) as dataset:
            pixels = max(pixels, dataset.RasterXSize * dataset.RasterYSize)
    return 2 * pixels * TILE_BYTES_PER_PIXEL <= available


def _in_worker_processes(jobs, workers: int, beat):
    """run_tiles in a pool of worker processes. When a worker dies (killed, out of memory),
    Python's pool breaks and every unfinished tile with it: those are run again in a new pool;
    tiles unfinished when a second pool breaks run one at a time, so only a tile that kills
    its own worker is skipped (and named)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    context.set_executable(python_for_workers())
    pending, attempts = list(jobs), {id(job): 0 for job in jobs}
    while pending:
        alone = any(attempts[id(job)] >= 2 for job in pending)
        batch = [next(job for job in pending if attempts[id(job)] >= 2)] if alone else pending
        for job in batch:
            attempts[id(job)] += 1
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1 if alone else workers, mp_context=context,
                                                      initializer=_start_worker,
                                                      initargs=(os.getpid(), usable_cores() // (1 if alone else workers)))
        try:
            with _without_main_script():  # the workers start as they are submitted
                futures = {pool.submit(process_tile, *job): job for job in batch}
            for job, result in _as_finished(futures, beat, broken=concurrent.futures.process.BrokenProcessPool):
                if result is not None:
                    pending.remove(job)
                    yield result
                elif alone:  # this tile alone killed its worker
                    pending.remove(job)
                    yield TileResult(job[0].tile_id, error="its worker process died (killed, or out of memory?) "
                                                           "while processing it")
        finally:
            for process in list(getattr(pool, "_processes", {}).values()):  # the running tiles
                with contextlib.suppress(OSError):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)


def _as_finished(futures: dict, beat, broken=()):
    """(job, result) of each future as it finishes (dask's or concurrent.futures'); with
    `broken` (an exception type), (job, None) for each future that failed with it. Yields
    results only: run_tiles turns them into TileResults."""
    remaining = list(futures)
    while remaining:
        finished = [future for future in remaining if future.done()]
        for future in finished:
            remaining.remove(future)
            job = futures[future]
            try:
                yield job, future.result()
            except Exception as error:  # noqa: BLE001 (a worker failed; the tile is named)
                if broken and isinstance(error, broken):
                    yield job, None
                else:
                    reason = " ".join(str(error).split()) or type(error).__name__
                    yield job, TileResult(job[0].tile_id, error=f"its worker failed ({reason})")
        if not finished:
            beat()
            time.sleep(0.1)


def _start_worker(parent: int, threads: int) -> None:
    """In a worker process: its host passes use `threads` threads (its share of the cores), and
    it ends once the process that started it is gone (QGIS killed or crashed). Idle workers
    would otherwise wait for tiles forever: each holds the task queue open itself, so it never
    sees the queue close."""
    limit_host_threads(max(1, threads))

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="end with QGIS", daemon=True).start()


@contextlib.contextmanager
def _without_main_script():
    """Start worker processes without running the caller's main script again in each of them
    (what Python's "spawn" does; a script without `if __name__ == "__main__":`, QGIS's console
    or qgis_process would break): the workers need only this module."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
