"""GeoTIFF in and out for the algorithms (GDAL, which every QGIS ships), with the checks
that keep a user from getting a silently wrong map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from ..core.export import PERCENT_NODATA  # DARTS' exported probabilities.tif: uint8 percent, nodata 255
from ..core.files import AtomicFiles, write_geotiff

gdal.UseExceptions()


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    geotransform: tuple
    wkt: str

    @property
    def crs(self) -> str | None:
        """The CRS for the core's writers: WKT, or None for a raster without one."""
        return self.wkt or None

    def describe(self) -> str:
        return f"{self.width} x {self.height} pixels, pixel size {self.geotransform[1]:g} x {abs(self.geotransform[5]):g}"


def _open(path: str, what: str, bands: int | None = 1):
    try:
        dataset = gdal.Open(path)
    except RuntimeError as error:
        raise ValueError(f"{what}: cannot open {path!r} as a raster ({error})") from None
    if bands is not None and dataset.RasterCount != bands:
        hint = ": extract the band first (e.g. with 'Rearrange bands')." if bands == 1 else ""
        raise ValueError(f"{what} has {dataset.RasterCount} bands, but {'one band is' if bands == 1 else f'{bands} are'} "
                         f"expected{hint}")
    if dataset.RasterXSize == 0 or dataset.RasterYSize == 0:
        raise ValueError(f"{what} is empty ({dataset.RasterXSize} x {dataset.RasterYSize} pixels)")
    return dataset


def read_band(path: str, what: str):
    """(pixels, nodata value or None) of a single-band raster."""
    dataset = _open(path, what)  # must outlive the band: GDAL crashes on an orphaned band
    band = dataset.GetRasterBand(1)
    return band.ReadAsArray(), band.GetNoDataValue()


def read_bands(path: str, what: str, bands: int) -> np.ndarray:
    """All bands (bands, y, x) of a raster with exactly `bands` bands."""
    dataset = _open(path, what, bands=bands)
    return dataset.ReadAsArray().reshape(bands, dataset.RasterYSize, dataset.RasterXSize)


def read_binary(path: str, what: str) -> np.ndarray:
    """A 0/1 raster (binarized objects or an extent) as bool; nodata and NaN count as 0."""
    data, nodata = read_band(path, what)
    missing = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        missing |= data == nodata
    odd = ~missing & (data != 0) & (data != 1)
    if odd.any():
        raise ValueError(f"{what} holds values other than 0 and 1 (e.g. {data[odd][0]:g}): give a binarized raster "
                         f"(an output of prepareexport or binarize), not probabilities")
    return (data == 1) & ~missing


def grid_of(path: str, what: str) -> Grid:
    dataset = _open(path, what, bands=None)
    return Grid(dataset.RasterXSize, dataset.RasterYSize, tuple(dataset.GetGeoTransform()), dataset.GetProjection())


def check_same_grid(name_a: str, grid_a: Grid, name_b: str, grid_b: Grid) -> None:
    """Raise unless both rasters share CRS, size, pixel size and origin."""
    problems = []
    srs_a, srs_b = osr.SpatialReference(), osr.SpatialReference()
    if grid_a.wkt and grid_b.wkt:
        srs_a.ImportFromWkt(grid_a.wkt)
        srs_b.ImportFromWkt(grid_b.wkt)
        if not srs_a.IsSame(srs_b):
            problems.append(f"CRS differs ({srs_a.GetName()} vs {srs_b.GetName()})")
    elif bool(grid_a.wkt) != bool(grid_b.wkt):
        problems.append("only one of them has a CRS")
    if (grid_a.width, grid_a.height) != (grid_b.width, grid_b.height):
        problems.append(f"size differs ({grid_a.width} x {grid_a.height} vs {grid_b.width} x {grid_b.height})")
    pixel = max(abs(grid_a.geotransform[1]), abs(grid_a.geotransform[5]))
    if not np.allclose(grid_a.geotransform[1:3] + grid_a.geotransform[4:], grid_b.geotransform[1:3] + grid_b.geotransform[4:],
                       rtol=1e-9, atol=1e-9 * pixel):
        problems.append(f"pixel size differs ({grid_a.describe()} vs {grid_b.describe()})")
    elif not np.allclose([grid_a.geotransform[0], grid_a.geotransform[3]], [grid_b.geotransform[0], grid_b.geotransform[3]],
                         rtol=0, atol=1e-3 * pixel):
        problems.append(f"extent differs (origin {grid_a.geotransform[0]:.3f}, {grid_a.geotransform[3]:.3f} vs "
                        f"{grid_b.geotransform[0]:.3f}, {grid_b.geotransform[3]:.3f})")
    if problems:
        raise ValueError(f"{name_a} and {name_b} are not on the same grid: {'; '.join(problems)}. "
                         f"Resample one onto the other first (e.g. with 'Align rasters').")


def read_probabilities(path: str, what: str, scale: str = "auto") -> np.ndarray:
    """Probabilities in [0, 1], NaN where there is no prediction: float32, or float64 for a
    float64 raster (rounding it to float32 would move values onto the threshold).

    Float rasters are read as fractions 0..1; DARTS' uint8 exports as percent 0..100
    (nodata 255). `scale` overrides the detection from the data type.
    """
    return _probabilities(*read_band(path, what), what, scale)


def read_probabilities_for_export(path: str, what: str, scale: str = "auto") -> np.ndarray:
    """As read_probabilities, but DARTS' uint8 percent stays uint8 percent (nodata -> 255), so
    it is written back unchanged: re-deriving it from float32 k/100 would shift some values by 1."""
    data, nodata = read_band(path, what)
    probabilities = _probabilities(data, nodata, what, scale)
    if data.dtype == np.uint8 and scale != "fraction":
        return np.where(np.isnan(probabilities), PERCENT_NODATA, data).astype(np.uint8)
    return probabilities


def _probabilities(data: np.ndarray, nodata, what: str, scale: str) -> np.ndarray:
    if scale == "auto":
        if data.dtype == np.uint8:
            scale = "percent"
        elif data.dtype.kind == "f":
            scale = "fraction"
        else:
            raise ValueError(f"{what} has data type {data.dtype}: expected float probabilities 0..1 or DARTS' uint8 "
                             f"percent 0..100 (nodata 255); set the probability scale parameter to read it anyway")
    if scale == "percent":
        missing = data == (PERCENT_NODATA if nodata is None else nodata)
        if data.dtype.kind == "f":
            missing |= np.isnan(data)
        valid = data[~missing]
        if valid.size and (valid.min() < 0 or valid.max() > 100):
            raise ValueError(f"{what} is read as percent, but holds values from {valid.min()} to {valid.max()} "
                             f"(expected 0..100, nodata {PERCENT_NODATA})")
        probabilities = data.astype(np.float32) / np.float32(100)
    else:
        probabilities = data.astype(np.float64 if data.dtype == np.float64 else np.float32, copy=False)
        missing = np.isnan(probabilities)
        if nodata is not None and not np.isnan(nodata):
            missing |= data == nodata
        valid = probabilities[~missing]
        if valid.size and (valid.min() < 0 or valid.max() > 1):
            raise ValueError(f"{what} holds values from {valid.min():g} to {valid.max():g}, but probabilities must be in "
                             f"0..1; for DARTS' uint8 percent rasters set the probability scale to 'percent'")
    if missing.all():
        raise ValueError(f"{what} has no valid pixel: every pixel is nodata")
    probabilities[missing] = np.nan
    return probabilities


def read_quality(path: str, what: str) -> np.ndarray:
    """Quality mask as uint8 0 (invalid) / 1 (low) / 2 (high quality); nodata counts as 0."""
    data, nodata = read_band(path, what)
    if data.dtype.kind not in "ui":
        raise ValueError(f"{what} has data type {data.dtype}: expected an integer quality mask "
                         f"(0 invalid, 1 low quality, 2 high quality)")
    invalid = data == nodata if nodata is not None else np.zeros(data.shape, bool)
    outside = ~invalid & ((data < 0) | (data > 2))
    if outside.any():
        raise ValueError(f"{what} holds values up to {data[outside].max()}, but a quality mask holds 0 (invalid), "
                         f"1 (low) or 2 (high quality); build one first (e.g. from a Sentinel-2 SCL band)")
    quality = data.astype(np.uint8)
    quality[invalid] = 0
    return quality


class AtomicOutputs(AtomicFiles):
    """The run's outputs: written to temporary files beside their targets and moved into
    place together only when the whole run succeeded (see core.files.AtomicFiles)."""

    def write(self, path: str, array: np.ndarray, grid: Grid, nodata: float | None = None) -> None:
        write_geotiff(self.reserve(path), array, grid.geotransform, grid.crs, nodata)
