"""The grid of a raster file (size, geotransform, CRS), and whether two rasters lie on the same
grid: rasters that are combined pixel by pixel must, or the result is silently shifted.
No QGIS import here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gdal import osgeo
from .geotiff import open_raster


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
        from .layers import areas_in_m2

        if not self.has_geotransform:
            return "area_m2 is in pixels, not m²: the raster has no geotransform"
        if not areas_in_m2(self.crs):
            return "area_m2 is in square map units, not m²: the raster has no projected or geographic CRS"
        return None

    def describe(self) -> str:
        return describe((self.width, self.height), self.geotransform)


def grid_of(path: str, what: str) -> Grid:
    """The grid of a raster file (`what` names it in errors)."""
    with open_raster(path, what, bands=None) as dataset:
        return Grid(dataset.RasterXSize, dataset.RasterYSize, tuple(dataset.GetGeoTransform()),
                    dataset.GetProjection(), dataset.GetGeoTransform(can_return_null=True) is not None)


def check_same_grid(name_a: str, grid_a: Grid, name_b: str, grid_b: Grid) -> None:
    """Raise unless both rasters share CRS, size, pixel size and origin."""
    problems = grid_differences((grid_a.width, grid_a.height), grid_a.geotransform, grid_a.wkt,
                                (grid_b.width, grid_b.height), grid_b.geotransform, grid_b.wkt)
    if problems:
        raise ValueError(f"{name_a} and {name_b} are not on the same grid: {'; '.join(problems)}. "
                         f"Resample one onto the other first (e.g. with 'Align rasters').")


def grid_differences(size_a, transform_a, wkt_a, size_b, transform_b, wkt_b) -> list[str]:
    """What differs between two grids, given as (width, height), GDAL geotransform and CRS WKT
    ('' or None: none); [] when they are the same."""
    problems = []
    if wkt_a and wkt_b:
        _, _, osr = osgeo()
        srs_a, srs_b = osr.SpatialReference(), osr.SpatialReference()
        srs_a.ImportFromWkt(wkt_a)
        srs_b.ImportFromWkt(wkt_b)
        if not srs_a.IsSame(srs_b):
            problems.append(f"CRS differs ({srs_a.GetName()} vs {srs_b.GetName()})")
    elif bool(wkt_a) != bool(wkt_b):
        problems.append("only one of them has a CRS")
    if tuple(size_a) != tuple(size_b):
        problems.append(f"size differs ({size_a[0]} x {size_a[1]} vs {size_b[0]} x {size_b[1]})")
    pixel = max(abs(transform_a[1]), abs(transform_a[5]))
    if not np.allclose(tuple(transform_a[1:3]) + tuple(transform_a[4:]), tuple(transform_b[1:3]) + tuple(transform_b[4:]),
                       rtol=1e-9, atol=1e-9 * pixel):
        problems.append(f"pixel size differs ({describe(size_a, transform_a)} vs {describe(size_b, transform_b)})")
    elif not np.allclose([transform_a[0], transform_a[3]], [transform_b[0], transform_b[3]], rtol=0, atol=1e-3 * pixel):
        problems.append(f"extent differs (origin {transform_a[0]:.3f}, {transform_a[3]:.3f} vs "
                        f"{transform_b[0]:.3f}, {transform_b[3]:.3f})")
    return problems


def describe(size, transform) -> str:
    return f"{size[0]} x {size[1]} pixels, pixel size {transform[1]:g} x {abs(transform[5]):g}"
