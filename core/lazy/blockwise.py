"""Raster files larger than memory: GDAL windows read as dask arrays, dask arrays written into
GeoTIFFs window by window, and the computation run on dask's local scheduler or on a
dask.distributed cluster with progress and cancel.

With chunked.py, the postprocessing then runs block by block and no step holds a whole
raster. A GDAL VRT mosaic of many tiles is read like any other raster. No QGIS import here.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading

import numpy as np

from ...definitions import PERCENT_NODATA, Progress
from ..files.exclusion import burn_polygons, check_on_grid, decode_exclusion, is_vector
from ..files.gdal import gdal_writing
from ..files.geotiff import TIFF_TILE, KeptRasters, RasterWindows, create_geotiff
from ..kernels.encodings import (
    check_quality_dtype,
    decode_binary,
    decode_probabilities,
    decode_quality,
    keeps_percent,
    probabilities_dtype,
    decode_quality_read,
    stored_percent,
)
from ..kernels.postprocess import erode_valid_window, halo_window
from .chunked import chunk_grid


def block_size(bytes_per_pixel: float, memory_limit_mb: float, workers: int = 2) -> int:
    """Side of square blocks such that `workers` blocks in flight (plus as many waiting) stay
    within half the memory limit; a multiple of the GeoTIFF tile, 512 to 4096 pixels (larger
    blocks are no faster, and keep the peak low when much memory is free)."""
    budget = memory_limit_mb * 2 ** 20 / 2 / (2 * max(1, workers))
    side = int(math.sqrt(max(budget, 1) / bytes_per_pixel)) // TIFF_TILE * TIFF_TILE
    return int(min(4096, max(2 * TIFF_TILE, side)))


def read_lazy(path: str, block: int, what: str = "raster"):
    """The raw pixels of band 1 as a dask array of `block` x `block` chunks, and its nodata."""
    windows = RasterWindows(path, what=what)
    return _windows_lazy(windows, block, f"read-{_token(path)}-{block}"), windows.nodata


def _windows_lazy(windows, block: int, name: str):
    """A sliceable reader (RasterWindows and the like) as a dask array of `block` x `block`
    chunks, each read by one task."""
    import dask.array as da

    # inline_array: the (small) reader sits in each task, so cloned graphs (bind) keep it.
    return da.from_array(windows, chunks=(block, block), lock=False, asarray=True, fancy=False, inline_array=True,
                         meta=np.zeros((0, 0), windows.dtype), name=name)


class ErodedQualityWindows:
    """erode_valid(quality >= level, size, edge_size) of a quality mask file, sliceable like a
    2-D array (uint8 0/1): each window is read once with the erosion's halo around it
    (postprocess.halo_window), where dask's map_overlap would compute the 3 x 3 neighbouring
    blocks whole (read, decoded and checked) for every block, in every pass that uses it."""

    ndim = 2
    dtype = np.dtype(np.uint8)

    def __init__(self, path: str, what: str, level: int, size: int, edge_size: int):
        self.quality = RasterWindows(path, what=what)
        check_quality_dtype(self.quality.dtype, what)
        self.shape, self.level, self.size, self.edge_size = self.quality.shape, level, size, edge_size

    def __getitem__(self, key):
        location = tuple((start, max(start, stop)) for start, stop, _ in
                         (k.indices(n) for k, n in zip(key, self.shape)))
        (top, bottom), (left, right) = grown = halo_window(location, self.size, self.shape)
        quality = decode_quality_read(self.quality[top:bottom, left:right], self.quality.nodata,
                                      self.quality.what)  # checked: 0, 1 or 2
        valid = quality >= self.level
        return erode_valid_window(valid, self.size, self.edge_size, location, grown, self.shape).view(np.uint8)


def read_eroded_quality_lazy(path: str, what: str, block: int, level: int, size: int, edge_size: int):
    """erode_mask(quality >= level, size, edge_size) of a quality mask file: a dask uint8 0/1
    array of `block` x `block` chunks, each read once with its halo (ErodedQualityWindows)."""
    windows = ErodedQualityWindows(path, what, level, size, edge_size)
    return _windows_lazy(windows, block, f"eroded-{_token(path)}-{block}-{level}-{size}-{edge_size}")


def _token(path: str) -> str:
    from dask.base import tokenize

    status = os.stat(path)
    return tokenize(os.path.realpath(path), status.st_mtime_ns, status.st_size)


def _meta(dtype):
    return np.zeros((0, 0), dtype)


def read_probabilities_lazy(path: str, what: str, block: int, scale: str = "auto"):
    """Probabilities in [0, 1] with NaN for no prediction, decoded block by block."""
    raw, nodata = read_lazy(path, block, what)
    dtype = probabilities_dtype(raw.dtype, what, scale)
    return raw.map_blocks(decode_probabilities, nodata, what, scale, dtype=dtype, meta=_meta(dtype))


def any_prediction(probabilities):
    """A lazy bool: whether probabilities (decoded, or DARTS' uint8 percent as stored) have any
    pixel with a prediction (a raster read whole with none is refused; block by block this is
    checked alongside the work)."""
    if probabilities.dtype == np.uint8:
        return (probabilities != PERCENT_NODATA).any()
    return (~np.isnan(probabilities)).any()


def require_prediction(has_prediction: bool, what: str) -> None:
    if not has_prediction:
        raise ValueError(f"{what} has no valid pixel: every pixel is nodata")


def read_probabilities_for_export_lazy(path: str, what: str, block: int, scale: str = "auto"):
    """read_probabilities_lazy, but DARTS' uint8 percent stays uint8 percent (nodata -> 255),
    as geotiff.read_probabilities_for_export: its exact values, not re-derived from k / 100,
    checked as decoding checks them and never decoded to float."""
    raw, nodata = read_lazy(path, block, what)
    if not keeps_percent(raw.dtype, scale):
        return read_probabilities_lazy(path, what, block, scale)
    return raw.map_blocks(stored_percent, nodata, what, dtype=np.uint8, meta=_meta(np.uint8))


def read_quality_lazy(path: str, what: str, block: int):
    """A 0/1/2 quality mask (nodata -> 0), decoded block by block."""
    raw, nodata = read_lazy(path, block, what)
    check_quality_dtype(raw.dtype, what)
    return raw.map_blocks(decode_quality, nodata, what, dtype=np.uint8, meta=_meta(np.uint8))


def read_binary_lazy(path: str, what: str, block: int):
    """A 0/1 raster as bool (nodata -> 0), decoded block by block."""
    raw, nodata = read_lazy(path, block, what)
    return raw.map_blocks(decode_binary, nodata, what, dtype=bool, meta=_meta(bool))


def store(arrays: dict, targets: dict, locks):
    """A Delayed that writes each lazy array into its GeoTIFFWindows target, chunk by chunk,
    each file under its own lock (`locks(name)`, see `scheduler`). Its tasks take the arrays'
    own chunks (dask's `store` takes an optimized copy with other keys), so whatever is
    computed with it from the same arrays (a pixel count) shares their chunks instead of
    computing them again."""
    import dask

    writes = []
    for name, array in arrays.items():
        chunks = array.to_delayed(optimize_graph=False)
        writes += [dask.delayed(_write_window)(targets[name], row, col, chunks[i, j], locks(name))
                   for i, j, (row, col) in chunk_grid(array.chunks)]
    return dask.delayed(_written)(*writes)


def _write_window(target, row: int, col: int, chunk, lock) -> None:
    with lock:
        target[row:row + chunk.shape[0], col:col + chunk.shape[1]] = chunk


def _written(*writes) -> None:
    """The end of a store, once every window is written."""


@contextlib.contextmanager
def scheduler(address: str | None = None):
    """(client or None, locks): a dask.distributed Client connected to `address`, or None for
    dask's local threaded scheduler; `locks(name)` is the lock that takes the writes into the
    file `name` in turns (a threading lock, or a distributed.Lock for worker processes), so
    that different files are written side by side."""
    if not address:
        yield None, _thread_locks()
        return
    try:
        import distributed
    except ImportError as error:
        raise ImportError("a dask scheduler address was given, but dask.distributed is not installed: "
                          "`pip install distributed` or `apt install python3-distributed`") from error
    try:
        client = distributed.Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ValueError(f"cannot connect to the dask scheduler at {address!r}: {error}") from None
    try:
        _share_core(client)
        yield client, _cluster_locks(distributed, client)
    finally:
        client.close()


def _thread_locks():
    """locks(name): one threading lock per name."""
    return _locks_by_name(lambda name: threading.Lock())


def _cluster_locks(distributed, client):
    """locks(name): one distributed.Lock per name, held by the cluster's scheduler."""
    from dask.base import tokenize

    prefix = f"darts-write-{os.getpid()}-{id(client)}"

    def new_lock(name: str):
        import warnings

        try:  # distributed before 2024 finds no default client of its own (set_as_default=False)
            with warnings.catch_warnings():  # 2024.x: "no longer necessary", but still taken
                warnings.simplefilter("ignore", DeprecationWarning)
                return distributed.Lock(f"{prefix}-{tokenize(name)}", client=client)
        except TypeError:  # later versions bind to the scheduler of the worker that unpickles it
            return distributed.Lock(f"{prefix}-{tokenize(name)}")

    return _locks_by_name(new_lock)


def _locks_by_name(new_lock):
    """locks(name): the lock `new_lock(name)` made the first time each name is asked for."""
    locks, guard = {}, threading.Lock()

    def lock_of(name: str):
        with guard:
            if name not in locks:
                locks[name] = new_lock(name)
            return locks[name]

    return lock_of


CORE_NEEDS = ("definitions.py", "dependencies.py")  # modules of the plugin outside core/ that the core imports


def _share_core(client) -> None:
    """Make `darts_postprocessing.core` importable on the cluster's workers (they run the
    core's kernels): upload it as a zip unless they have it already."""
    import importlib.util
    import tempfile
    import zipfile

    def has_core():  # runs on the workers (sent by value)
        return all(importlib.util.find_spec(name) is not None
                   for name in ("darts_postprocessing", "darts_postprocessing.core", "darts_postprocessing.definitions"))

    if all(client.run(has_core).values()):
        return
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as folder:
        archive = os.path.join(folder, "darts_postprocessing_core.zip")
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("darts_postprocessing/__init__.py", "")
            for name in CORE_NEEDS:  # the numpy-free modules below the core
                zipped.write(os.path.join(package, name), f"darts_postprocessing/{name}")
            for folder_path, _, names in sorted(os.walk(os.path.join(package, "core"))):
                for name in sorted(names):
                    if name.endswith(".py"):
                        path = os.path.join(folder_path, name)
                        zipped.write(path, "darts_postprocessing/" + os.path.relpath(path, package))
        client.upload_file(archive)


def compute(*delayeds, client=None, progress: Progress | None = None, message: str = "Processing blocks"):
    """Compute on the local threaded scheduler (client None) or on the cluster, reporting
    progress(fraction, message) by finished tasks; progress may raise to cancel."""
    import dask

    report = progress or (lambda fraction, text: None)
    if client is None:
        from dask.callbacks import Callback

        class Reporter(Callback):
            def _start_state(self, dsk, state):
                self.total = max(1, sum(len(state[key]) for key in ("ready", "waiting", "running")))
                self.done = 0

            def _posttask(self, key, result, dsk, state, worker_id):
                self.done += 1
                report(min(1.0, self.done / self.total), message)

        # Our own pool, shut down before an error (or cancel) goes on: blocks still running
        # would otherwise write into files the caller is about to discard.
        from concurrent.futures import ThreadPoolExecutor

        from ..kernels.threads import passes_alone

        def start_thread():
            passes_alone()  # the blocks use the cores already
            kept.start_thread()

        with KeptRasters() as kept:  # the inputs' decoded blocks reused by each pass and halo
            pool = ThreadPoolExecutor(os.cpu_count() or 1, initializer=start_thread)
            try:
                with Reporter():  # (unoptimized: a store and the values computed with it share chunks)
                    return dask.compute(*delayeds, scheduler="threads", pool=pool, optimize_graph=False)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    import time

    futures = client.compute(list(delayeds), optimize_graph=False)
    try:
        while not all(future.done() for future in futures):
            report(sum(future.done() for future in futures) / len(futures), message)
            time.sleep(0.2)
        return tuple(client.gather(futures))
    except BaseException:
        client.cancel(futures)
        raise


def exclusion_mask_lazy(source: str, shape, geotransform, crs, block: int, scratch: str, *, layer: str | None = None,
                        where: str | None = None, what: str = "exclusion mask"):
    """exclusion_mask as a dask bool array of `block` x `block` chunks, never whole in memory:
    polygons are first burnt into the GeoTIFF `scratch` (a temporary file the caller removes)."""

    if is_vector(source):
        with gdal_writing(scratch):
            dataset = create_geotiff(scratch, shape, np.uint8, geotransform, crs)
            try:
                burn_polygons(source, dataset, layer, where, crs, what)
                dataset.FlushCache()
            finally:
                dataset = None
        source, what = scratch, f"{what} (burnt onto the grid)"
    else:
        from ..files.geotiff import open_raster

        with open_raster(source, what) as dataset:
            check_on_grid(dataset, shape, geotransform, crs, what)
    raw, nodata = read_lazy(source, block, what)
    return raw.map_blocks(decode_exclusion, nodata, dtype=bool, meta=np.zeros((0, 0), bool))
