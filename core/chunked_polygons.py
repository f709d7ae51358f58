"""Polygons of rasters larger than memory: `polygonize` composed block by block on Dask.

The objects are numbered over the whole raster as in memory (chunked.py's labelling: Region_ID
in row-major order of each object's first pixel). Each block then traces its objects with the
same rule as vectorize.py and computes their statistics with objects.py's `statistics_of`:
an object inside one block is written to the GeoPackage right away; an object that crosses
block sides sends its pieces and pixel values on, and one last step joins the pieces (GEOS
union: one feature) and computes its statistics over all of its pixels. Attributes equal the
in-memory ones (statistics sum values in ascending order, whatever their block); geometries
cover the same pixels. Writes take turns under one lock, so a cluster's workers can share the
file (on a shared file system). No QGIS import here.
"""

from __future__ import annotations

import os

import numpy as np

from ._backend import to_host
from .chunked import Labels, _blocks, _dask, object_numbers, summarize_labels
from .files import gdal_geotransform, spatial_reference
from .objects import STATISTICS, Objects, statistics_of
from .vectorize import FIELDS, row_pixel_areas, trace, write_layer


def _block_geotransform(transform, row0: int, col0: int):
    x0, dx, rx, y0, ry, dy = transform
    return (x0 + col0 * dx + row0 * rx, dx, rx, y0 + col0 * ry + row0 * dy, ry, dy)


def polygonize_block(binary, probabilities, numbers, crossing, origin, transform, crs, row_areas, path, layer, lock):
    """Trace one block: write its objects that lie inside it; return the rest (pieces as WKB,
    pixel values, pixel counts and areas) keyed by Region_ID, for `finish_crossing`."""
    binary = np.ascontiguousarray(to_host(binary) != 0)
    objects = Objects(binary)
    if objects.count == 0:
        return {}
    srs = spatial_reference(crs)
    # Each local object's Region_ID: the global number of its first run. Both labellings work
    # on the same runs; `numbers` is indexed by chunked.py's labels of them.
    first_run = np.unique(objects.run_labels, return_index=True)[1]
    region = numbers[Labels.of(binary, 8).labels[first_run]]

    npixel = objects.npixel()
    area = objects.rows_weighted(row_areas[origin[0]: origin[0] + objects.shape[0]])
    stats = objects.statistics(probabilities) if probabilities is not None else None
    geometries = trace(objects.label_image(np.int32), _block_geotransform(transform, *origin), srs)

    inside = ~crossing[region - 1]
    local = np.flatnonzero(inside)
    fields = {"Region_ID": region[local], "npixel": npixel[local], "area_m2": area[local]}
    if stats is not None:
        fields.update({name: stats[name][local] for name in STATISTICS})
    if local.size:
        with lock:
            write_layer(path, layer, srs, fields, [geometries[i + 1] for i in local], append=True)

    rest = {}
    if (~inside).any():
        flat, labels = objects.pixels()
        values = to_host(probabilities).reshape(-1)[flat] if probabilities is not None else None
        for i in np.flatnonzero(~inside):
            # A list: one object may enter a block more than once (joined in another block).
            rest.setdefault(int(region[i]), []).append((geometries[i + 1].ExportToWkb(), int(npixel[i]), float(area[i]),
                                                        None if values is None else values[labels == i + 1]))
    return rest


def finish_crossing(parts, crs, path, layer, lock, with_statistics: bool) -> int:
    """Join the pieces of each object that crosses block sides into one feature (union of its
    pieces, statistics over all of its pixels) and write them; returns how many."""
    from .files import osgeo

    _, ogr, _ = osgeo()
    gathered: dict[int, list] = {}
    for block in parts:
        for region, pieces in block.items():
            gathered.setdefault(region, []).extend(pieces)
    if not gathered:
        return 0
    regions = np.array(sorted(gathered), np.int64)
    geometries, npixel, area, values, labels = [], [], [], [], []
    for index, region in enumerate(regions, start=1):
        pieces = ogr.Geometry(ogr.wkbMultiPolygon)
        for wkb, *_ in gathered[region]:
            for piece in ogr.CreateGeometryFromWkb(wkb):
                pieces.AddGeometry(piece)
        geometries.append(_without_cut_vertices(ogr, ogr.ForceToMultiPolygon(pieces.UnionCascaded())))
        npixel.append(sum(part[1] for part in gathered[region]))
        area.append(sum(part[2] for part in gathered[region]))
        if with_statistics:
            for part in gathered[region]:
                values.append(part[3])
                labels.append(np.full(part[3].size, index, np.int64))
    fields = {"Region_ID": regions, "npixel": np.array(npixel, np.int64), "area_m2": np.array(area)}
    if with_statistics:
        fields.update(statistics_of(np.concatenate(values), np.concatenate(labels), regions.size))
    with lock:
        write_layer(path, layer, spatial_reference(crs), fields, geometries, append=True)
    return int(regions.size)


def _without_cut_vertices(ogr, multipolygon):
    """The union keeps a vertex wherever a block side cut a straight edge: drop those (a vertex
    between two neighbours on the same pixel-edge line), so rings come out as GDAL traces them
    in memory, with vertices at corners only."""
    result = ogr.Geometry(ogr.wkbMultiPolygon)
    for polygon in multipolygon:
        cleaned = ogr.Geometry(ogr.wkbPolygon)
        for ring in polygon:
            points = ring.GetPoints()[:-1]
            n = len(points)
            kept = [points[i] for i in range(n)
                    if not (points[i - 1][0] == points[i][0] == points[(i + 1) % n][0]
                            or points[i - 1][1] == points[i][1] == points[(i + 1) % n][1])]
            new_ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y, *_ in kept + kept[:1]:
                new_ring.AddPoint_2D(x, y)
            cleaned.AddGeometry(new_ring)
        result.AddGeometry(cleaned)
    return result


def polygonize_lazy(binary, geotransform, crs, path: str, layer: str, probabilities, lock):
    """A dask Delayed that writes the 8-connected objects of the dask raster `binary` into a
    new GeoPackage layer, as `polygonize` does in memory, and gives the number of features.
    `probabilities` (a dask array on the same chunks, or None) gives the statistics."""
    dask, _, bind = _dask()
    transform = gdal_geotransform(geotransform)
    srs = spatial_reference(crs)
    chunks = binary.chunks
    origins = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) for c in chunks]
    names = ["Region_ID", *(STATISTICS if probabilities is not None else ()), "npixel", "area_m2"]
    write_layer(path, layer, srs, {name: [] for name in FIELDS if name in names}, [])
    row_areas = row_pixel_areas(transform, binary.shape[0], srs)
    crs_wkt = srs.ExportToWkt() if srs is not None else None

    blocks = _blocks(binary)
    summaries = [[dask.delayed(summarize_labels)(blocks[i][j], 8, (origins[0][i], origins[1][j]), binary.shape[1])
                  for j in range(len(chunks[1]))] for i in range(len(chunks[0]))]
    numbering = dask.delayed(object_numbers, nout=3)(summaries, 8)
    row_areas = dask.delayed(row_areas)  # one copy in the graph, not one per block
    again = _blocks(bind(binary, numbering[0]))
    values = _blocks(bind(probabilities.rechunk(chunks), numbering[0])) if probabilities is not None else None
    parts = [dask.delayed(polygonize_block)(again[i][j], values[i][j] if values else None, numbering[0][i][j],
                                            numbering[2], (int(origins[0][i]), int(origins[1][j])), transform,
                                            crs_wkt, row_areas, path, layer, lock)
             for i in range(len(chunks[0])) for j in range(len(chunks[1]))]
    crossing = dask.delayed(finish_crossing)(parts, crs_wkt, path, layer, lock, probabilities is not None)
    return dask.delayed(lambda count, _: count)(numbering[1], crossing)


def polygonize_file_lazy(binary, geotransform, crs, path: str, layer: str, probabilities=None, lock=None):
    """polygonize_lazy into a temporary file beside `path`, moved into place by the last task:
    the GeoPackage appears whole or not at all. A Delayed number of features."""
    from dask.utils import SerializableLock

    from .files import AtomicFiles

    files = AtomicFiles()
    temporary = files.reserve(path)
    try:
        count = polygonize_lazy(binary, geotransform, crs, temporary, layer, probabilities, lock or SerializableLock())
    except BaseException:
        files.discard()
        raise
    dask, _, _ = _dask()
    return dask.delayed(_move_into_place)(count, temporary, path)


def _move_into_place(count: int, temporary: str, path: str) -> int:
    os.replace(temporary, path)
    return count
