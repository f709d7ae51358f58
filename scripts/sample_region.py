#!/usr/bin/env python3
"""Synthetic DARTS tiles of one region: round slumps placed on the ground (EPSG:3413 metres),
drawn into overlapping tiles on their own UTM grids, as Sentinel-2 tiles overlap.

    python3 scripts/sample_region.py OUTPUT_FOLDER [--extent]

writes tile_A (UTM 7N), tile_B, tile_C (8N) and an empty tile_D, each a DARTS tile folder
(probabilities.tif as uint8 percent, quality_data_mask.tif, or extent.tif with --extent).

Tiles near 69.5°N, 138°W straddle UTM zones 7N and 8N. Each slump is a disc: probability 0.9
inside, 0.1 outside; a tile sees it on its own pixel grid, so two tiles in different zones
see slightly different pixels of one slump."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()
GROUND = 3413
PIXEL = 10.0
EDGE = 10  # the edge band of an exported extent (DARTS: the erosion size)


@dataclass(frozen=True)
class TileSpec:
    name: str
    epsg: int
    x0: float  # upper-left corner in the tile's CRS
    y0: float
    size: int  # pixels per side
    clouds: tuple = ()  # (row0, row1, col0, col1) windows of quality 0
    mask: str = "quality"  # "quality" (quality_data_mask.tif 0/1/2) or "extent" (extent.tif 0/1)


def srs_of(epsg: int):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def to_crs(points, source: int, target: int) -> np.ndarray:
    """(n, 2) points from EPSG `source` to EPSG `target`."""
    transform = osr.CoordinateTransformation(srs_of(source), srs_of(target))
    return np.array(transform.TransformPoints(np.asarray(points, float).tolist()))[:, :2]


def ground_of_pixel(spec: TileSpec, row: float, col: float) -> tuple[float, float]:
    """EPSG:3413 coordinates of a (fractional) pixel position of a tile."""
    return tuple(to_crs([(spec.x0 + col * PIXEL, spec.y0 - row * PIXEL)], spec.epsg, GROUND)[0])


def draw_tile(spec: TileSpec, slumps, folder: str) -> str:
    """Write the tile folder `folder/spec.name` (probabilities.tif as DARTS' uint8 percent, and
    the quality mask or the extent); slumps are (x, y, radius) in EPSG:3413 metres."""
    rows, cols = np.mgrid[0:spec.size, 0:spec.size]
    centres = np.column_stack([(spec.x0 + (cols.ravel() + 0.5) * PIXEL), (spec.y0 - (rows.ravel() + 0.5) * PIXEL)])
    ground = to_crs(centres, spec.epsg, GROUND)
    probabilities = np.full(spec.size * spec.size, 10, np.uint8)
    for x, y, radius in slumps:
        probabilities[np.hypot(ground[:, 0] - x, ground[:, 1] - y) < radius] = 90
    probabilities = probabilities.reshape(spec.size, spec.size)
    quality = np.full((spec.size, spec.size), 2, np.uint8)
    for row0, row1, col0, col1 in spec.clouds:
        quality[row0:row1, col0:col1] = 0
    tile = os.path.join(folder, spec.name)
    os.makedirs(tile, exist_ok=True)
    write(os.path.join(tile, "probabilities.tif"), probabilities, spec, nodata=255)
    if spec.mask == "quality":
        write(os.path.join(tile, "quality_data_mask.tif"), quality, spec)
    else:
        extent = (quality > 0).astype(np.uint8)  # as a postprocessed tile (this plugin's tile outputs): without an edge band
        extent[:EDGE], extent[-EDGE:], extent[:, :EDGE], extent[:, -EDGE:] = 0, 0, 0, 0
        write(os.path.join(tile, "extent.tif"), extent, spec)
    return tile


def write(path: str, array: np.ndarray, spec: TileSpec, nodata=None) -> None:
    dataset = gdal.GetDriverByName("GTiff").Create(path, spec.size, spec.size, 1, gdal.GDT_Byte, ["COMPRESS=LZW"])
    dataset.SetGeoTransform((spec.x0, PIXEL, 0, spec.y0, 0, -PIXEL))
    dataset.SetProjection(srs_of(spec.epsg).ExportToWkt())
    band = dataset.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(array)
    dataset = None


# The region of the tests: tiles A (zone 7N) and B (zone 8N) overlap in a band about 1 km wide
# near 138°W; C (zone 8N) overlaps B; D is empty; a slump is named by where it lies.
def region(folder: str, mask: str = "quality") -> dict:
    """Write the test region's tiles into `folder`; returns {slump name: (x, y, radius)} and the
    tile specs (`tiles`)."""
    centre = to_crs([(-138.0, 69.5)], 4326, 32607)[0]  # on zone 7N's eastern edge
    a = TileSpec("tile_A", 32607, round(centre[0] - 2500, -1), round(centre[1] + 1000, -1), 300, mask=mask)
    b_origin = to_crs([(a.x0 + 2000, a.y0 - 300)], 32607, 32608)[0]
    b = TileSpec("tile_B", 32608, round(b_origin[0], -1), round(b_origin[1], -1), 300,
                 clouds=((150, 200, 5, 40),), mask=mask)
    c = TileSpec("tile_C", 32608, b.x0 + 2500, b.y0, 300, mask=mask)
    d = TileSpec("tile_D", 32608, b.x0, b.y0 - 6000, 100, mask=mask)
    slumps = {
        # in the A/B overlap, far inside both: one feature seen by 2 tiles
        "overlap": (*ground_of_pixel(a, 60, 260), 60.0),
        # across A's east edge, whole in B: from B only
        "a_edge": (*ground_of_pixel(a, 230, 299), 50.0),
        # inside A only
        "a_only": (*ground_of_pixel(a, 150, 80), 70.0),
        # in the overlap under B's cloud, whole in A
        "b_cloud": (*ground_of_pixel(b, 175, 20), 45.0),
        # in the B/C overlap, far from both tiles' edges
        "bc_overlap": (*ground_of_pixel(c, 120, 25), 55.0),
        # inside C only
        "c_only": (*ground_of_pixel(c, 200, 200), 80.0),
    }
    for spec in (a, b, c, d):
        draw_tile(spec, slumps.values(), folder)
    return {"slumps": slumps, "tiles": {spec.name: spec for spec in (a, b, c, d)}}


def exclusion_polygons(path: str, centres, half_side: float = 150.0, epsg: int = 4326) -> str:
    """A GeoPackage of squares (2 x `half_side` m) around EPSG:3413 `centres`, stored in `epsg`."""
    from osgeo import ogr

    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = dataset.CreateLayer("water", srs_of(epsg), ogr.wkbPolygon)
    for x, y in centres:
        corners = [(x - half_side, y - half_side), (x + half_side, y - half_side), (x + half_side, y + half_side),
                   (x - half_side, y + half_side), (x - half_side, y - half_side)]
        ring = ", ".join(f"{a} {b}" for a, b in to_crs(corners, GROUND, epsg))
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON (({ring}))"))
        layer.CreateFeature(feature)
    dataset = None
    return path


def speckled_region(folder: str, mask: str = "quality", radius: float | None = None) -> dict:
    """The test region (`region`) with checkerboard probabilities (90 / 10 % on alternate
    pixels of each tile's grid; with `radius`, only within `radius` m of the slump seen by
    tiles A and B): with 8-connectivity one object of thousands of diagonal parts per tile,
    the hardest merge."""
    info = region(folder, mask)
    x, y, _ = info["slumps"]["overlap"]
    for name, spec in info["tiles"].items():
        dataset = gdal.Open(os.path.join(folder, name, "probabilities.tif"), gdal.GA_Update)
        band = dataset.GetRasterBand(1)
        data = band.ReadAsArray()
        rows, cols = np.mgrid[:data.shape[0], :data.shape[1]]
        speckle = np.where((rows + cols) % 2 == 0, 90, 10).astype(np.uint8)
        if radius is not None:
            centres = np.column_stack([spec.x0 + (cols.ravel() + 0.5) * PIXEL, spec.y0 - (rows.ravel() + 0.5) * PIXEL])
            ground = to_crs(centres, spec.epsg, GROUND)
            near = (np.hypot(ground[:, 0] - x, ground[:, 1] - y) < radius).reshape(data.shape)
            speckle = np.where(near, speckle, data)
        band.WriteArray(speckle)
        dataset = None
    return info

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--extent", action="store_true",
                        help="postprocessed tiles as the plugin's tile outputs hold them: extent.tif, no quality mask")
    arguments = parser.parse_args()
    written = region(arguments.folder, mask="extent" if arguments.extent else "quality")
    print(f"{len(written['tiles'])} tiles in {arguments.folder}: {', '.join(written['tiles'])}")

