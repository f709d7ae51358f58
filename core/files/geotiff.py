"""GeoTIFF rasters: opened and checked for reading (one band, not complex), read whole or by
window, written whole (`write_geotiff`) or window by window (`GeoTiffWindows`), every output
tiled in TIFF_TILE blocks and compressed one way, with its tags.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from ..kernels.encodings import (all_nodata, all_stored_nodata, check_raster_shape, decode_probabilities,
                                 decode_quality_read, keeps_percent, percent_doubt, probability_scale, stored_percent)
from .gdal import (auxiliary_files_off, check_written, gdal_geotransform, gdal_writing, open_read_only, osgeo,
                   spatial_reference)

TIFF_TILE = 256  # GeoTIFF tile size of every output; blocks are multiples of it


@contextlib.contextmanager
def open_raster(path: str, what: str, bands: int | None = 1):
    """`with open_raster(...) as dataset:` the GDAL dataset of `path`, read-only and leaving
    nothing beside it (files.open_read_only), checked to have `bands` bands (None: any) of real
    numbers and pixels; a file GDAL cannot open is a clear error naming the parameter (`what`)
    and the file."""
    gdal, _, _ = osgeo()
    with contextlib.ExitStack() as stack:
        try:
            dataset = stack.enter_context(open_read_only(path, "raster"))
        except RuntimeError as error:
            raise not_a_raster(what, path, error) from None
        check_raster_shape(dataset.RasterCount, dataset.RasterXSize, dataset.RasterYSize, what, bands)
        for index in range(1, dataset.RasterCount + 1):
            kind = dataset.GetRasterBand(index).DataType
            if gdal.DataTypeIsComplex(kind):
                raise ValueError(f"{what}: {path!r} holds complex numbers ({gdal.GetDataTypeName(kind)}), which no "
                                 f"DARTS raster does: probabilities, masks and counts are real numbers")
        yield dataset


def not_a_raster(what: str, path: str, error) -> ValueError:
    """The error for a file GDAL cannot open as a raster, naming the parameter and the file."""
    return ValueError(f"{what}: cannot open {path!r} as a raster ({error})")


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
    with open_raster(path, what) as dataset:
        return probability_scale(_numpy_type(dataset.GetRasterBand(1).DataType), what, scale)


def percent_scale_doubt(path: str, what: str, scale: str = "auto") -> str | None:
    """rasters.percent_doubt for the probabilities raster `path` read with `scale`: only float
    rasters read as percent are looked at, their largest valid value found strip by strip (never
    with GDAL's statistics, which write a .aux.xml beside the input or into a VRT)."""
    if probability_scale_of(path, what, scale) != "percent":
        return None
    with open_raster(path, what) as dataset:  # must outlive the band: GDAL crashes on an orphaned band
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
    with open_raster(path, what) as dataset:  # must outlive the band: GDAL crashes on an orphaned band
        band = dataset.GetRasterBand(1)
        return read_pixels(band, path, what), band.GetNoDataValue()


def read_bands(path: str, what: str, bands: int) -> np.ndarray:
    """All bands (bands, y, x) of a raster with exactly `bands` bands (a Planet UDM2 has 8)."""
    with open_raster(path, what, bands=bands) as dataset:
        return read_pixels(dataset, path, what).reshape(bands, dataset.RasterYSize, dataset.RasterXSize)


class KeptRasters:
    """The raster datasets that the threads of one block-wise computation keep open while it
    runs (`start_thread` is the thread pool's initializer): GDAL's cache of decoded blocks
    then serves the windows read again (a block's halo, each pass's inputs, the blocks beside
    it in the same strips of a stripped GeoTIFF) instead of decoding them anew from a new
    handle. Inside `with kept:` GDAL's cache is held at CACHE_BYTES at most; at the end every
    dataset is closed (with GDAL's auxiliary files off, as open_read_only has them). Only for
    files that nothing writes while the computation runs (its inputs)."""

    CACHE_BYTES = 128 * 2 ** 20

    def __init__(self):
        self._lock = threading.Lock()
        self._datasets = []

    @property
    def datasets_open(self) -> int:
        """How many datasets the threads hold open now."""
        return len(self._datasets)

    def start_thread(self) -> None:
        _this_thread.kept = self
        _this_thread.datasets = {}

    def dataset(self, path: str, what: str):
        """This thread's open dataset of `path` (opened and checked as open_raster does)."""
        datasets = _this_thread.datasets
        if path not in datasets:
            gdal, _, _ = osgeo()
            with auxiliary_files_off():  # as open_read_only opens
                try:
                    dataset = gdal.OpenEx(str(path), gdal.OF_READONLY | gdal.OF_RASTER)
                except RuntimeError as error:
                    raise not_a_raster(what, path, error) from None
            with self._lock:
                self._datasets.append(dataset)
            datasets[path] = dataset
        return datasets[path]

    def __enter__(self):
        gdal, _, _ = osgeo()
        self._cache = gdal.GetCacheMax()
        gdal.SetCacheMax(min(self._cache, self.CACHE_BYTES))
        return self

    def __exit__(self, *exc) -> None:
        """Close the datasets (the threads have ended) and give GDAL's cache its size back."""
        gdal, _, _ = osgeo()
        try:
            with auxiliary_files_off(), self._lock:  # closed as open_read_only closes
                datasets, self._datasets = self._datasets, []
                for dataset in datasets:
                    if hasattr(dataset, "Close"):  # GDAL >= 3.8; older: closed with the last reference
                        dataset.Close()
                del datasets
        finally:
            gdal.SetCacheMax(self._cache)


_this_thread = threading.local()  # .kept, .datasets: a KeptRasters' thread


class RasterWindows:
    """One band of a raster file, sliceable like a 2-D array: each slice reads that window
    through GDAL (a new handle each time, so threads and worker processes can share it; in a
    thread of a KeptRasters, its kept handle)."""

    ndim = 2

    def __init__(self, path: str, band: int = 1, what: str = "raster"):
        self.path, self.band, self.what = path, band, what
        with open_raster(path, what) as dataset:  # single-band, as in memory
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
        kept = getattr(_this_thread, "kept", None)
        if kept is not None:
            return read_pixels(kept.dataset(self.path, self.what).GetRasterBand(self.band), self.path, self.what,
                               (cols[0], rows[0], width, height))
        with open_raster(self.path, self.what) as dataset:
            return read_pixels(dataset.GetRasterBand(self.band), self.path, self.what,
                               (cols[0], rows[0], width, height))


def _numpy_type(gdal_type: int):
    from osgeo import gdal_array

    return gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)


class GeoTiffWindows:
    """A tiled, compressed single-band GeoTIFF, created empty (sparse) and written window by
    window: `target[rows, cols] = block` opens it, writes, flushes, closes and reads the window
    back (files.check_written: a failed write may pass silently), so writers in threads or
    worker processes can take turns under the file's lock (blockwise.store)."""

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
        value = np.asarray(value, dtype=self.dtype)
        with gdal_writing(self.path):
            dataset = gdal.Open(self.path, gdal.GA_Update)
            dataset.GetRasterBand(1).WriteArray(value, cols.start or 0, rows.start or 0)
            dataset.FlushCache()
            dataset = None
        check_written(self.path, value, (rows.start or 0, cols.start or 0))


_GDAL_TYPES = {np.dtype(np.uint8): "Byte", np.dtype(np.float32): "Float32", np.dtype(np.float64): "Float64",
               np.dtype(np.int32): "Int32"}


def create_geotiff(path: str, shape, dtype, geotransform, crs=None, nodata: float | None = None,
                   compress: str = "DEFLATE", options=(), tags=None, description=None):
    """A new single-band, tiled, compressed GeoTIFF, open for writing (geotransform None: none
    written, as for a raster in pixel coordinates); create and close it inside gdal_writing.
    `tags` and `description` say how it was made (metadata.apply_metadata)."""
    gdal, _, _ = osgeo()
    dtype = np.dtype(dtype)
    if dtype not in _GDAL_TYPES:
        raise TypeError(f"cannot write dtype {dtype} (supported: {', '.join(map(str, _GDAL_TYPES))})")
    creation = [f"COMPRESS={compress}", "TILED=YES", "BIGTIFF=IF_SAFER", *options]
    if dtype.kind == "f":
        creation.append("PREDICTOR=3")
    dataset = gdal.GetDriverByName("GTiff").Create(path, shape[1], shape[0], 1,
                                                   gdal.GetDataTypeByName(_GDAL_TYPES[dtype]), creation)
    if geotransform is not None:
        dataset.SetGeoTransform(gdal_geotransform(geotransform))
    srs = spatial_reference(crs)
    if srs is not None:
        dataset.SetSpatialRef(srs)
    if nodata is not None:
        dataset.GetRasterBand(1).SetNoDataValue(nodata)
    from .tags import apply_metadata

    apply_metadata(dataset, tags, description)
    return dataset


def write_geotiff(path: str, array: np.ndarray, geotransform, crs=None, nodata: float | None = None,
                  compress: str = "DEFLATE", tags=None, description=None) -> None:
    """A single-band, tiled, compressed GeoTIFF of `array` (see create_geotiff)."""
    with gdal_writing(path):
        dataset = create_geotiff(path, array.shape, array.dtype, geotransform, crs, nodata, compress,
                                 tags=tags, description=description)
        try:
            dataset.GetRasterBand(1).WriteArray(array)
            dataset.FlushCache()
        finally:
            dataset = None  # closes the file
    check_written(path, array)


def read_probabilities(path: str, what: str, scale: str = "auto") -> np.ndarray:
    """Probabilities in [0, 1], NaN where there is no prediction: float32, or float64 for a
    float64 raster (rounding it to float32 would move values onto the threshold).

    Float rasters are read as fractions 0..1; DARTS' uint8 exports as percent 0..100
    (nodata 255). `scale` overrides the detection from the data type.
    """
    return _probabilities(*read_band(path, what), what, scale)


def read_probabilities_for_export(path: str, what: str, scale: str = "auto") -> np.ndarray:
    """As read_probabilities, but DARTS' uint8 percent stays uint8 percent (nodata -> 255), so
    it is written back unchanged: re-deriving it from float32 k/100 would shift some values by 1.
    Checked as read_probabilities checks it, never decoded to a float raster (a uint8 tile's
    float32 copy is 4 bytes a pixel): encodings.percent_lookup gives the floats it stands for,
    and the core thresholds it in uint8 (prepare_export with probability_scale "percent")."""
    data, nodata = read_band(path, what)
    if keeps_percent(data.dtype, scale) and data.ndim == 2:
        stored = stored_percent(data, nodata, what)
        if all_stored_nodata(stored):
            raise ValueError(f"{what} has no valid pixel: every pixel is nodata")
        return stored
    return _probabilities(data, nodata, what, scale)


def _probabilities(data: np.ndarray, nodata, what: str, scale: str) -> np.ndarray:
    probabilities = decode_probabilities(data, nodata, what, scale)
    if all_nodata(probabilities):
        raise ValueError(f"{what} has no valid pixel: every pixel is nodata")
    return probabilities


def read_quality(path: str, what: str) -> np.ndarray:
    """Quality mask as uint8 0 (invalid) / 1 (low) / 2 (high quality); nodata counts as 0."""
    return decode_quality_read(*read_band(path, what), what)
