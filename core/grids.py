"""The grid of a raster file (size, geotransform, CRS) and the check that two rasters share
one: every rule that combines rasters pixel by pixel needs it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .blockwise import open_raster
from .files import osgeo


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
        from .vectorize import areas_in_m2

        if not self.has_geotransform:
            return "area_m2 is in pixels, not m²: the raster has no geotransform"
        if not areas_in_m2(self.crs):
            return "area_m2 is in square map units, not m²: the raster has no projected or geographic CRS"
        return None

    def describe(self) -> str:
        return f"{self.width} x {self.height} pixels, pixel size {self.geotransform[1]:g} x {abs(self.geotransform[5]):g}"


def grid_of(path: str, what: str) -> Grid:
    """The grid of a raster file (`what` names it in errors)."""
    dataset = open_raster(path, what, bands=None)
    return Grid(dataset.RasterXSize, dataset.RasterYSize, tuple(dataset.GetGeoTransform()), dataset.GetProjection(),
                dataset.GetGeoTransform(can_return_null=True) is not None)


def check_same_grid(name_a: str, grid_a: Grid, name_b: str, grid_b: Grid) -> None:
    """Raise unless both rasters share CRS, size, pixel size and origin."""
    problems = []
    _, _, osr = osgeo()
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
