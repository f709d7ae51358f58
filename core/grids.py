"""Whether two rasters lie on the same grid (CRS, size, pixel size, origin): rasters that are
combined pixel by pixel must, or the result is silently shifted. No QGIS import here."""

from __future__ import annotations

import numpy as np

from .files import osgeo


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
