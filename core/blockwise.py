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
from collections.abc import Callable

import numpy as np

from .files import create_geotiff, gdal_writing, osgeo
from .rasters import (PERCENT_NODATA, check_quality_dtype, check_raster_shape, decode_binary, decode_probabilities,
                      decode_quality, percent_doubt, probabilities_dtype, probability_scale)

Progress = Callable[[float, str], None]
TIFF_TILE = 256  # GeoTIFF tile size of every output; blocks are multiples of it


def open_raster(path: str, what: str, bands: int | None = 1):
    """A GDAL dataset of `path`, checked to have `bands` bands (None: any) and pixels; a file
    GDAL cannot open is a clear error naming the parameter (`what`) and the file."""
    gdal, _, _ = osgeo()
    try:
        dataset = gdal.Open(path)
    except RuntimeError as error:
        raise ValueError(f"{what}: cannot open {path!r} as a raster ({error})") from None
    check_raster_shape(dataset.RasterCount, dataset.RasterXSize, dataset.RasterYSize, what, bands)
    for index in range(1, dataset.RasterCount + 1):
        kind = dataset.GetRasterBand(index).DataType
        if gdal.DataTypeIsComplex(kind):
            raise ValueError(f"{what}: {path!r} holds complex numbers ({gdal.GetDataTypeName(kind)}), which no DARTS "
                             f"raster does: probabilities, masks and counts are real numbers")
    return dataset


def read_pixels(source, path: str, what: str, window=()):
    """The pixels of a GDAL dataset or band (of a window: xoff, yoff, width, height); a
    truncated or corrupt file is a clear error naming the parameter and the file."""
    try:
        return source.ReadAsArray(*window)
    except RuntimeError as error:  # GDAL's
        raise ValueError(f"{what}: cannot read {path!r}, the file is damaged or incomplete ({error})") from None


def probability_scale_of(path: str, what: str, scale: str = "auto") -> str:
    """'fraction' or 'percent': how the probabilities in `path` are read (`scale`, or for
    'auto' its data type: DARTS' uint8 is percent), so the threshold is applied as the
    contract says for that scale (postprocess.above_threshold)."""
    dataset = open_raster(path, what)
    return probability_scale(_numpy_type(dataset.GetRasterBand(1).DataType), what, scale)


def percent_scale_doubt(path: str, what: str, scale: str = "auto") -> str | None:
    """rasters.percent_doubt for the probabilities raster `path` read with `scale`: only float
    rasters read as percent are looked at, their largest valid value found strip by strip (never
    with GDAL's statistics, which write a .aux.xml beside the input or into a VRT)."""
    if probability_scale_of(path, what, scale) != "percent":
        return None
    dataset = open_raster(path, what)  # must outlive the band: GDAL crashes on an orphaned band
    band = dataset.GetRasterBand(1)
    dtype = np.dtype(_numpy_type(band.DataType))
    if dtype.kind != "f":
        return None
    nodata, largest = band.GetNoDataValue(), None
    for row in range(0, dataset.RasterYSize, 1024):
        strip = read_pixels(band, path, what, (0, row, dataset.RasterXSize, min(1024, dataset.RasterYSize - row)))
        valid = strip[~np.isnan(strip) & ((strip != nodata) if nodata is not None else True)]
        if valid.size:
            largest = max(float(valid.max()), largest if largest is not None else -np.inf)
    return percent_doubt(largest, dtype, what)


def read_band(path: str, what: str):
    """(pixels, nodata value or None) of a single-band raster."""
    dataset = open_raster(path, what)  # must outlive the band: GDAL crashes on an orphaned band
    band = dataset.GetRasterBand(1)
    return read_pixels(band, path, what), band.GetNoDataValue()


class RasterWindows:
    """One band of a raster file, sliceable like a 2-D array: each slice reads that window
    through GDAL (a new handle each time, so threads and worker processes can share it)."""

    ndim = 2

    def __init__(self, path: str, band: int = 1, what: str = "raster"):
        self.path, self.band, self.what = path, band, what
        dataset = open_raster(path, what)  # single-band, as in memory
        source = dataset.GetRasterBand(band)
        self.shape = (dataset.RasterYSize, dataset.RasterXSize)
        self.dtype = np.dtype(_numpy_type(source.DataType))
        self.nodata = source.GetNoDataValue()

    def __getitem__(self, key):
        rows, cols = (k.indices(n) for k, n in zip(key, self.shape))
        if rows[2] != 1 or cols[2] != 1:
            raise IndexError("only contiguous windows can be read")
        height, width = max(0, rows[1] - rows[0]), max(0, cols[1] - cols[0])
        if height == 0 or width == 0:
            return np.zeros((height, width), self.dtype)
        dataset = open_raster(self.path, self.what)
        return read_pixels(dataset.GetRasterBand(self.band), self.path, self.what, (cols[0], rows[0], width, height))


def _numpy_type(gdal_type: int):
    from osgeo import gdal_array

    return gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)


def block_size(bytes_per_pixel: float, memory_limit_mb: float, workers: int = 2) -> int:
    """Side of square blocks such that `workers` blocks in flight (plus as many waiting) stay
    within half the memory limit; a multiple of the GeoTIFF tile, 512 to 4096 pixels (larger
    blocks are no faster, and keep the peak low when much memory is free)."""
    budget = memory_limit_mb * 2 ** 20 / 2 / (2 * max(1, workers))
    side = int(math.sqrt(max(budget, 1) / bytes_per_pixel)) // TIFF_TILE * TIFF_TILE
    return int(min(4096, max(2 * TIFF_TILE, side)))


def read_lazy(path: str, block: int, what: str = "raster"):
    """The raw pixels of band 1 as a dask array of `block` x `block` chunks, and its nodata."""
    import dask.array as da

    windows = RasterWindows(path, what=what)
    # inline_array: the (small) reader sits in each task, so cloned graphs (bind) keep it.
    array = da.from_array(windows, chunks=(block, block), lock=False, asarray=True, fancy=False, inline_array=True,
                          meta=np.zeros((0, 0), windows.dtype), name=f"read-{_token(path)}-{block}")
    return array, windows.nodata


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
    """A lazy bool: whether decoded probabilities have any pixel with a prediction (a raster
    read whole with none is refused; block by block this is checked alongside the work)."""
    return (~np.isnan(probabilities)).any()


def require_prediction(has_prediction: bool, what: str) -> None:
    if not has_prediction:
        raise ValueError(f"{what} has no valid pixel: every pixel is nodata")


def read_probabilities_for_export_lazy(path: str, what: str, block: int, scale: str = "auto"):
    """read_probabilities_lazy, but DARTS' uint8 percent stays uint8 percent (nodata -> 255),
    as raster_io.read_probabilities_for_export: its exact values, not re-derived from k / 100."""
    probabilities = read_probabilities_lazy(path, what, block, scale)
    raw, _ = read_lazy(path, block, what)
    if raw.dtype != np.uint8 or scale == "fraction":
        return probabilities
    import dask.array as da

    return da.where(da.isnan(probabilities), PERCENT_NODATA, raw).astype(np.uint8)


def read_quality_lazy(path: str, what: str, block: int):
    """A 0/1/2 quality mask (nodata -> 0), decoded block by block."""
    raw, nodata = read_lazy(path, block, what)
    check_quality_dtype(raw.dtype, what)
    return raw.map_blocks(decode_quality, nodata, what, dtype=np.uint8, meta=_meta(np.uint8))


def read_binary_lazy(path: str, what: str, block: int):
    """A 0/1 raster as bool (nodata -> 0), decoded block by block."""
    raw, nodata = read_lazy(path, block, what)
    return raw.map_blocks(decode_binary, nodata, what, dtype=bool, meta=_meta(bool))


class GeoTiffWindows:
    """A tiled, compressed single-band GeoTIFF, created empty (sparse) and written window by
    window: `target[rows, cols] = block` opens it, writes, flushes and closes, so writers in
    threads or worker processes can take turns under one lock (dask.array.store's `lock`)."""

    def __init__(self, path: str, shape, dtype, geotransform, crs=None, nodata: float | None = None,
                 compress: str = "DEFLATE", tags=None, description=None):
        self.path, self.dtype = path, np.dtype(dtype)
        with gdal_writing(path):
            dataset = create_geotiff(path, shape, dtype, geotransform, crs, nodata, compress,
                                     [f"BLOCKXSIZE={TIFF_TILE}", f"BLOCKYSIZE={TIFF_TILE}", "SPARSE_OK=TRUE"],
                                     tags, description)
            dataset.FlushCache()
            dataset = None

    def __setitem__(self, key, value):
        gdal, _, _ = osgeo()
        rows, cols = key
        with gdal_writing(self.path):
            dataset = gdal.Open(self.path, gdal.GA_Update)
            dataset.GetRasterBand(1).WriteArray(np.asarray(value, dtype=self.dtype), cols.start or 0, rows.start or 0)
            dataset.FlushCache()
            dataset = None


def store(arrays: dict, targets: dict, lock):
    """A Delayed that writes each lazy array into its GeoTIFFWindows target, under `lock`."""
    import dask.array as da

    names = list(arrays)
    return da.store([arrays[n] for n in names], [targets[n] for n in names], lock=lock, compute=False)


@contextlib.contextmanager
def scheduler(address: str | None = None):
    """(client or None, lock for writing files): a dask.distributed Client connected to
    `address`, or None for dask's local threaded scheduler."""
    if not address:
        yield None, threading.Lock()
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
        yield client, distributed.Lock(f"darts-write-{os.getpid()}-{id(client)}", client=client)
    finally:
        client.close()


def _share_core(client) -> None:
    """Make `darts_postprocessing.core` importable on the cluster's workers (they run the
    core's kernels): upload it as a zip unless they have it already."""
    import importlib.util
    import tempfile
    import zipfile

    def has_core():  # runs on the workers (sent by value)
        return all(importlib.util.find_spec(name) is not None
                   for name in ("darts_postprocessing", "darts_postprocessing.core"))

    if all(client.run(has_core).values()):
        return
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as folder:
        archive = os.path.join(folder, "darts_postprocessing_core.zip")
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("darts_postprocessing/__init__.py", "")
            for name in sorted(os.listdir(os.path.join(package, "core"))):
                if name.endswith(".py"):
                    zipped.write(os.path.join(package, "core", name), f"darts_postprocessing/core/{name}")
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

        pool = ThreadPoolExecutor(os.cpu_count() or 1)
        try:
            with Reporter():
                return dask.compute(*delayeds, scheduler="threads", pool=pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    import time

    futures = client.compute(list(delayeds))
    try:
        while not all(future.done() for future in futures):
            report(sum(future.done() for future in futures) / len(futures), message)
            time.sleep(0.2)
        return tuple(client.gather(futures))
    except BaseException:
        client.cancel(futures)
        raise
