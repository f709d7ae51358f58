"""GeoTIFF in and out for the algorithms (GDAL, which every QGIS ships), with the checks
that keep a user from getting a silently wrong map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

from ..core.blockwise import open_raster, read_pixels
from ..core.files import AtomicFiles, write_geotiff
from ..core.rasters import PERCENT_NODATA, decode_binary, decode_probabilities, decode_quality

gdal.UseExceptions()


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    geotransform: tuple
    wkt: str
    has_geotransform: bool = True  # False: GDAL's default (0, 1, 0, 0, 0, 1), pixel coordinates

    @property
    def crs(self) -> str | None:
        """The CRS for the core's writers: WKT, or None for a raster without one."""
        return self.wkt or None

    @property
    def transform_to_write(self):
        """The geotransform outputs get: none when the input has none (for the next step)."""
        return self.geotransform if self.has_geotransform else None

    def area_note(self) -> str | None:
        """What area_m2 really holds on this grid when it is not m² (None when it is)."""
        from ..core.vectorize import areas_in_m2

        if not self.has_geotransform:
            return "area_m2 is in pixels, not m²: the raster has no geotransform"
        if not areas_in_m2(self.crs):
            return "area_m2 is in square map units, not m²: the raster has no projected or geographic CRS"
        return None

    def describe(self) -> str:
        return f"{self.width} x {self.height} pixels, pixel size {self.geotransform[1]:g} x {abs(self.geotransform[5]):g}"


def read_band(path: str, what: str):
    """(pixels, nodata value or None) of a single-band raster."""
    dataset = open_raster(path, what)  # must outlive the band: GDAL crashes on an orphaned band
    band = dataset.GetRasterBand(1)
    return read_pixels(band, path, what), band.GetNoDataValue()


def read_bands(path: str, what: str, bands: int) -> np.ndarray:
    """All bands (bands, y, x) of a raster with exactly `bands` bands."""
    dataset = open_raster(path, what, bands=bands)
    return read_pixels(dataset, path, what).reshape(bands, dataset.RasterYSize, dataset.RasterXSize)


def read_binary(path: str, what: str) -> np.ndarray:
    """A 0/1 raster (binarized objects or an extent) as bool; nodata and NaN count as 0."""
    return decode_binary(*read_band(path, what), what)


def grid_of(path: str, what: str) -> Grid:
    dataset = open_raster(path, what, bands=None)
    return Grid(dataset.RasterXSize, dataset.RasterYSize, tuple(dataset.GetGeoTransform()), dataset.GetProjection(),
                dataset.GetGeoTransform(can_return_null=True) is not None)


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
    probabilities = decode_probabilities(data, nodata, what, scale)
    if np.isnan(probabilities).all():
        raise ValueError(f"{what} has no valid pixel: every pixel is nodata")
    return probabilities


def read_quality(path: str, what: str) -> np.ndarray:
    """Quality mask as uint8 0 (invalid) / 1 (low) / 2 (high quality); nodata counts as 0."""
    return decode_quality(*read_band(path, what), what)


class AtomicOutputs(AtomicFiles):
    """The run's outputs: written to temporary files beside their targets and moved into
    place together only when the whole run succeeded (see core.files.AtomicFiles). Every
    raster and GeoPackage carries `tags` (how the run made it, provenance.describe_outputs)
    and a raster its band description from `descriptions` ({output path: text})."""

    tags: dict = {}
    descriptions: dict = {}

    def write(self, path: str, array: np.ndarray, grid: Grid, nodata: float | None = None) -> None:
        write_geotiff(self.reserve(path), array, grid.transform_to_write, grid.crs, nodata, tags=self.tags,
                      description=self.descriptions.get(path))

    def store(self, arrays: dict, grid: Grid, lock, compress: str = "DEFLATE"):
        """A dask Delayed that writes {path: (lazy dask array, nodata)} window by window into
        the run's outputs (computed by blocks.run_blocks); `stored[path]` is then the file
        being written, for reading it back before the outputs are committed."""
        from ..core.blockwise import GeoTiffWindows, store

        targets = {path: GeoTiffWindows(self.reserve(path), array.shape, array.dtype, grid.transform_to_write, grid.crs,
                                        nodata, compress, self.tags, self.descriptions.get(path))
                   for path, (array, nodata) in arrays.items()}
        self.stored = {**getattr(self, "stored", {}), **{path: target.path for path, target in targets.items()}}
        return store({path: array for path, (array, _) in arrays.items()}, targets, lock)
