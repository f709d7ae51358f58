"""Polygons of rasters larger than memory: `polygonize` composed block by block on Dask.

The objects are numbered over the whole raster as in memory (chunked.py's labelling: Region_ID
in row-major order of each object's first pixel). Each block then traces its objects with the
same rule as vectorize.py and computes their statistics with objects.py's `statistics_of`:
an object inside one block is written to the GeoPackage right away; an object that crosses
block sides sends its pieces and pixel values on, and one last step joins the pieces (GEOS
union: one feature) and computes its statistics over all of its pixels. Attributes equal the
in-memory ones (statistics sum values in ascending order, whatever their block); geometries
cover the same pixels. Writes take turns under the file's lock, so a cluster's workers can
share the file (on a shared file system). No QGIS import here.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..files.gdal import gdal_geotransform, spatial_reference
from ..files.layers import FIELDS, Layout, row_pixel_areas, trace_objects, write_layer
from ..kernels.devices import to_host
from ..kernels.encodings import check_stored_percent, percent_lookup, statistics_values
from ..kernels.objects import STATISTICS, Objects, statistics_of
from .chunked import chunk_grid, chunk_recipes, dask_modules, numbered_objects


class CrossingPiece(NamedTuple):
    """What one block knows of an object that crosses its sides, for the last step to join."""

    wkb: bytes | None  # the block's polygon piece (None without geometry)
    npixel: int
    area: float  # m²
    values: np.ndarray | None  # the object's pixel values in this block (with statistics)


def _block_geotransform(transform, row0: int, col0: int):
    x0, dx, rx, y0, ry, dy = transform
    return (x0 + col0 * dx + row0 * rx, dx, rx, y0 + col0 * ry + row0 * dy, ry, dy)


def block_objects(binary, probabilities, numbers, crossing, origin, row_areas, geometry=None, lookup=None):
    """One block's objects in pass 2: (fields of the objects that lie inside it, their
    geometries or None, and the parts of the others keyed by Region_ID, for `merge_crossing`).
    `geometry` is (geotransform, srs) to trace polygons, or None; `lookup`: what integer
    `probabilities` stand for (Objects.statistics)."""
    binary = np.ascontiguousarray(to_host(binary) != 0)
    objects = Objects(binary)
    with_statistics = probabilities is not None
    if objects.count == 0:
        return _fields(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), with_statistics), [], {}
    # Each local object's Region_ID: `numbers` is indexed by the block's component labels as
    # pass 1 found them (chunked.Labels: the same runs, the same scipy numbering).
    first_run = np.unique(objects.run_labels, return_index=True)[1]
    region = numbers[objects.components[first_run]]
    npixel = objects.npixel()
    area = objects.rows_weighted(row_areas[origin[0]: origin[0] + objects.shape[0]])
    if with_statistics:  # C order once: a flat view of a strided block would copy it at every use
        probabilities = np.ascontiguousarray(to_host(probabilities))
    stats = objects.statistics(probabilities, lookup) if with_statistics else None
    traced = None
    if geometry is not None:
        transform, srs = geometry
        traced = trace_objects(objects, _block_geotransform(transform, *origin), srs)

    inside = ~crossing[region - 1]
    local = np.flatnonzero(inside)
    fields = _fields(region[local], npixel[local], area[local], with_statistics)
    if with_statistics:
        fields.update({name: stats[name][local] for name in STATISTICS})
    rest = {}
    outside = np.flatnonzero(~inside)
    if outside.size:
        values_of = {}
        if with_statistics:  # the pixel values of the crossing objects, grouped by object
            flat, labels = objects.pixels()
            picked = ~inside[labels - 1]
            labels, values = labels[picked], probabilities.reshape(-1)[flat[picked]]
            if lookup is not None:
                values = lookup[values]
            order = np.argsort(labels, kind="stable")
            groups = np.split(values[order], np.cumsum(np.bincount(labels, minlength=objects.count + 1))[:-1])
            values_of = {i: groups[i + 1] for i in outside}
        for i in outside:
            # A list: one object may enter a block more than once (joined in another block).
            rest.setdefault(int(region[i]), []).append(CrossingPiece(
                None if traced is None else traced[i + 1].ExportToWkb(), int(npixel[i]), float(area[i]),
                values_of.get(i)))
    return fields, None if traced is None else [traced[i + 1] for i in local], rest


def _fields(region, npixel, area, with_statistics):
    fields = {"Region_ID": region, "npixel": npixel, "area_m2": area}
    if with_statistics:
        fields.update({name: np.zeros(0) for name in STATISTICS} if region.size == 0 else {})
    return fields


def merge_crossing(parts, with_statistics: bool, with_geometry: bool):
    """(fields, geometries or None) of the objects that cross block sides, from their parts in
    every block: pieces joined (GEOS union: one feature), statistics over all of their pixels."""
    gathered: dict[int, list] = {}
    for block in parts:
        for region, pieces in block.items():
            gathered.setdefault(region, []).extend(pieces)
    regions = np.array(sorted(gathered), np.int64)
    npixel = np.array([sum(piece.npixel for piece in gathered[r]) for r in regions], np.int64)
    area = np.array([sum(piece.area for piece in gathered[r]) for r in regions], np.float64)
    fields = _fields(regions, npixel, area, with_statistics)
    if with_statistics:
        values = [piece.values for r in regions for piece in gathered[r]]
        labels = [np.full(piece.values.size, index, np.int64) for index, r in enumerate(regions, start=1)
                  for piece in gathered[r]]
        fields.update(statistics_of(np.concatenate(values) if values else np.zeros(0, np.float32),
                                    np.concatenate(labels) if labels else np.zeros(0, np.int64), regions.size))
    geometries = None
    if with_geometry:
        from ..files.gdal import osgeo

        _, ogr, _ = osgeo()
        geometries = []
        for region in regions:
            pieces = ogr.Geometry(ogr.wkbMultiPolygon)
            for crossing_piece in gathered[region]:
                for piece in ogr.CreateGeometryFromWkb(crossing_piece.wkb):
                    pieces.AddGeometry(piece)
            geometries.append(_without_cut_vertices(ogr, ogr.ForceToMultiPolygon(pieces.UnionCascaded())))
    return fields, geometries


def polygonize_block(binary, probabilities, numbers, crossing, origin, transform, crs, row_areas, path, layer, lock,
                     layout=None, lookup=None):
    """Trace one block: write its objects that lie inside it; return the parts of the others."""
    srs = spatial_reference(crs)  # from WKT: osr objects do not travel to worker processes
    fields, geometries, rest = block_objects(binary, probabilities, numbers, crossing, origin, row_areas,
                                             (transform, srs), lookup)
    if geometries:
        with lock:
            write_layer(path, layer, srs, fields, geometries, append=True, layout=layout)
    return rest


def finish_crossing(parts, crs, path, layer, lock, with_statistics: bool, layout=None) -> int:
    """Write the objects that cross block sides, each as one feature; returns how many."""
    fields, geometries = merge_crossing(parts, with_statistics, True)
    if geometries:
        with lock:
            write_layer(path, layer, spatial_reference(crs), fields, geometries, append=True, layout=layout)
    return len(geometries)


def statistics_block(binary, probabilities, numbers, crossing, origin, row_areas):
    """One block's share of object_statistics: (fields of the objects inside it, parts of the rest)."""
    fields, _, rest = block_objects(binary, probabilities, numbers, crossing, origin, row_areas)
    return fields, rest


def assemble_statistics(blocks, count: int, with_statistics: bool) -> dict:
    """The per-object table in Region_ID order from every block's objects and the crossing ones."""
    crossing_fields, _ = merge_crossing([rest for _, rest in blocks], with_statistics, False)
    names = ["Region_ID", "npixel", *(STATISTICS if with_statistics else ())]
    table = {"Region_ID": np.arange(1, count + 1), "npixel": np.zeros(count, np.int64)}
    table.update({name: np.full(count, np.nan) for name in names[2:]})
    for fields in [fields for fields, _ in blocks] + [crossing_fields]:
        index = np.asarray(fields["Region_ID"], np.int64) - 1
        for name in names[1:]:
            table[name][index] = fields[name]
    return table


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


def _create_layer(path, layer, crs, names, layout):
    """The empty GeoPackage layer the blocks append to (created when computed)."""
    write_layer(path, layer, spatial_reference(crs), {name: [] for name in FIELDS if name in names}, [], layout=layout)


def _polygonize_chunk(recipe, numbering, index, origin, transform, crs, row_areas, path, layer, lock, layout, created,
                      lookup):
    binary, *values = recipe.compute()
    return polygonize_block(binary, values[0] if values else None, numbering.per_chunk[index[0]][index[1]],
                            numbering.crossing, origin, transform, crs, row_areas, path, layer, lock, layout, lookup)


def _statistics_chunk(recipe, numbering, index, origin, row_areas):
    binary, *values = recipe.compute()
    return statistics_block(binary, values[0] if values else None, numbering.per_chunk[index[0]][index[1]],
                            numbering.crossing, origin, row_areas)


def _numbering_and_recipes(binary, probabilities):
    """Pass 1 (numbering the objects over all chunks) and the recipes of pass 2's chunks (the
    binary raster with its probabilities): each task of pass 2 computes its own chunks."""
    numbering = numbered_objects(binary, 8)
    inputs = [binary, *([_as_dask(probabilities, binary).rechunk(binary.chunks)] if probabilities is not None else [])]
    return numbering, chunk_recipes(*inputs)


def _as_dask(values, like):
    """`values` as a dask array chunked like `like` (a numpy array is wrapped)."""
    _, da = dask_modules()
    return values if hasattr(values, "dask") else da.from_array(values, chunks=like.chunks)


def polygonize_lazy(binary, geotransform, crs, path: str, layer: str, probabilities, lock, layout: Layout | None = None):
    """A dask Delayed that writes the 8-connected objects of the dask raster `binary` into a
    new GeoPackage layer `layer` of `path`, as `polygonize` does in memory (with `layout`), and
    gives the number of objects. `probabilities` (dask or numpy, same shape, or None) gives the
    statistics. `lock` serializes the writes: a threading or dask SerializableLock for threads,
    a distributed.Lock for worker processes (one file, written in turns)."""
    dask, _ = dask_modules()
    layout = layout or Layout()
    transform = gdal_geotransform(geotransform)
    srs = spatial_reference(crs)
    crs_wkt = srs.ExportToWkt() if srs is not None else None
    names = ["Region_ID", *(STATISTICS if probabilities is not None else ()), "npixel", "area_m2"]
    created = dask.delayed(_create_layer)(path, layer, crs_wkt, names, layout)
    row_areas = dask.delayed(row_pixel_areas(transform, binary.shape[0], srs))  # one copy in the graph
    values, lookup = None, None
    if probabilities is not None and probabilities.dtype == np.uint8:
        # DARTS' percent as stored: each object pixel looked up as statistics_values would give
        # it (as polygons._statistics_values does in memory), no float copy of each block.
        values = _as_dask(probabilities, binary).map_blocks(_checked_stored, dtype=np.uint8,
                                                            meta=np.zeros((0, 0), np.uint8))
        lookup = percent_lookup(layout.statistics)
    elif probabilities is not None:
        kept = probabilities.dtype.kind == "f" and layout.statistics == "fraction"  # statistics_values keeps these
        dtype = probabilities.dtype if kept else np.dtype(np.float32)
        values = _as_dask(probabilities, binary).map_blocks(statistics_values, layout.statistics, dtype=dtype,
                                                            meta=np.zeros((0, 0), dtype))
    numbering, recipes = _numbering_and_recipes(binary, values)
    parts = [dask.delayed(_polygonize_chunk)(recipes[i][j], numbering, (i, j), origin, transform, crs_wkt, row_areas,
                                             path, layer, lock, layout, created, lookup)
             for i, j, origin in chunk_grid(binary.chunks)]
    crossing = dask.delayed(finish_crossing)(parts, crs_wkt, path, layer, lock, probabilities is not None, layout)
    return dask.delayed(_first)(numbering.count, crossing)


def _checked_stored(stored):
    """A block of DARTS' percent as stored, after polygons' check of it (check_stored_percent)."""
    check_stored_percent(stored)
    return stored


def _first(value, *after):
    """`value`, once the tasks `after` are done."""
    return value


def polygonize_file_lazy(binary, geotransform, crs, path: str, layer: str, probabilities=None, lock=None,
                         layout: Layout | None = None):
    """polygonize_lazy into a temporary file beside `path`, moved into place by the last task:
    the GeoPackage appears whole or not at all (a failed computation can leave the hidden
    temporary file, which the next write into that folder removes once this process is gone).
    A Delayed number of features."""
    from dask.utils import SerializableLock

    from ..files.atomic import AtomicFiles

    temporary = AtomicFiles().reserve(path)
    count = polygonize_lazy(binary, geotransform, crs, temporary, layer, probabilities, lock or SerializableLock(),
                            layout)
    dask, _ = dask_modules()
    return dask.delayed(_move_into_place)(count, temporary, path)


def _move_into_place(count: int, temporary: str, path: str) -> int:
    os.replace(temporary, path)
    return count


def object_statistics_lazy(binary, values=None):
    """Lazy object_statistics of a dask raster: a Delayed table (Region_ID, npixel and, with
    `values`, min/max/mean/median/std per 8-connected object), equal to the in-memory one."""
    dask, _ = dask_modules()
    numbering, recipes = _numbering_and_recipes(binary, values)
    no_areas = dask.delayed(np.zeros(binary.shape[0]))
    parts = [dask.delayed(_statistics_chunk)(recipes[i][j], numbering, (i, j), origin, no_areas)
             for i, j, origin in chunk_grid(binary.chunks)]
    return dask.delayed(assemble_statistics)(parts, numbering.count, values is not None)
