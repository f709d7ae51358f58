"""GeoTIFF in and out for the algorithms (GDAL, which every QGIS ships), with the checks
that keep a user from getting a silently wrong map."""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from ..core.files.atomic import AtomicFiles
from ..core.files.geotiff import open_raster, read_band, read_pixels, write_geotiff
from ..core.files.grids import Grid
from ..core.kernels.encodings import decode_binary

gdal.UseExceptions()


def read_bands(path: str, what: str, bands: int) -> np.ndarray:
    """All bands (bands, y, x) of a raster with exactly `bands` bands."""
    with open_raster(path, what, bands=bands) as dataset:
        return read_pixels(dataset, path, what).reshape(bands, dataset.RasterYSize, dataset.RasterXSize)


def read_binary(path: str, what: str) -> np.ndarray:
    """A 0/1 raster (binarized objects or an extent) as bool; nodata and NaN count as 0."""
    return decode_binary(*read_band(path, what), what)


class AtomicOutputs(AtomicFiles):
    """The run's outputs: written to temporary files beside their targets and moved into
    place together only when the whole run succeeded (see core.files.atomic.AtomicFiles). Every
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
        from ..core.files.geotiff import GeoTiffWindows
        from ..core.lazy.blockwise import store

        targets = {path: GeoTiffWindows(self.reserve(path), array.shape, array.dtype, grid.transform_to_write, grid.crs,
                                        nodata, compress, self.tags, self.descriptions.get(path))
                   for path, (array, nodata) in arrays.items()}
        self.stored = {**getattr(self, "stored", {}), **{path: target.path for path, target in targets.items()}}
        return store({path: array for path, (array, _) in arrays.items()}, targets, lock)
