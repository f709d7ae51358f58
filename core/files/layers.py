"""GeoPackage layers of objects: how object polygons are traced from a label raster and written.

Every 8-connected object becomes one MultiPolygon feature that follows the pixel edges,
holes included, nothing simplified. GDAL traces the pieces with 4-connectivity (which
gives valid polygons); pieces of one object, which touch only at corners, are then joined
into one MultiPolygon. Tracing 8-connected regions directly would give rings that touch
themselves: invalid geometries. Upstream DARTS writes each piece as its own feature: the
layout `parts=True` does that too, for tools that expect Polygon features. Pixel areas in m²
per row (`row_pixel_areas`) live here too: they depend on the grid's CRS.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from ...definitions import STATISTICS_SCALES
from ..kernels.objects import STATISTICS
from .gdal import gdal_geotransform, gdal_writing, osgeo, spatial_reference

AUTHALIC_RADIUS_M = 6371007.181  # sphere of the WGS 84 ellipsoid's surface area






@dataclass(frozen=True)
class Layout:
    """How polygons are written.

    statistics: "fraction" (of the probabilities, 0..1, all Real) or "percent" (of DARTS'
    exported uint8 percent values `int(p * 100)`, as upstream computes them: min and max are
    Integer64 0..100, mean, median and std in percent). parts: one Polygon feature per
    4-connected part (upstream's layout; each part carries its object's Region_ID and
    statistics) instead of one MultiPolygon per 8-connected object. geometry_name: the
    geometry column (upstream's GeoPackages: GDAL's default `geom`). tags: the dataset's and
    layer's metadata (metadata.describe_run).
    """

    statistics: str = "fraction"
    parts: bool = False
    geometry_name: str = "geometry"
    tags: dict = field(default_factory=dict, hash=False)

    def __post_init__(self):
        if self.statistics not in STATISTICS_SCALES:
            raise ValueError(f"statistics scale must be one of {', '.join(STATISTICS_SCALES)}, got {self.statistics!r}")


DARTS_TILE = Layout(statistics="percent", geometry_name="geom")  # upstream's prediction_*.gpkg


def row_pixel_areas(geotransform, height: int, srs) -> np.ndarray:
    """Area in m² of one pixel in each row: constant in a projected CRS; on a sphere of equal
    area for a geographic one (rows bounded by parallels); the raw unit² without a CRS."""
    x0, dx, rx, y0, ry, dy = gdal_geotransform(geotransform)
    if srs is not None and srs.IsGeographic():
        to_radians = srs.GetAngularUnits()
        top = (y0 + np.arange(height) * dy) * to_radians
        sines = np.abs(np.sin(top) - np.sin(top + dy * to_radians))
        return AUTHALIC_RADIUS_M ** 2 * abs(dx) * to_radians * sines
    unit = srs.GetLinearUnits() if srs is not None and srs.IsProjected() else 1.0
    return np.full(height, abs(dx * dy - rx * ry) * unit * unit)


def areas_in_m2(crs) -> bool:
    """Whether row_pixel_areas gives m²: only in a projected or geographic CRS (else unit²)."""
    srs = spatial_reference(crs)
    return srs is not None and (srs.IsProjected() or srs.IsGeographic())


def trace(labels, transform, srs, report=None) -> dict:
    """{label: MultiPolygon} of the non-zero labels of a label raster, from GDAL's 4-connected
    pieces (`report(fraction)` may raise to cancel)."""
    pieces, memory = _pieces_layer(srs)
    _polygonize(labels, transform, pieces, report)
    return _collected(pieces)


# Tracing window by window pays GDAL's setup per window (~0.1 ms): above this many windows (a
# speckled raster), or windows over half of the raster, one pass over the whole raster is cheaper.
MAX_WINDOWS = 10000


def trace_objects(objects, transform, srs, report=None) -> dict:
    """trace() of the objects' label raster (a kernels.objects.Objects), the same bytes, but
    window by window around the objects (Objects.window_images) instead of over the whole
    raster, where every pixel corner's coordinates are exact (exact_grid): GDAL then scans the
    objects' windows (a small share of a tile) instead of every pixel, and no full label raster
    is made."""
    windows = objects.window_images(max_windows=MAX_WINDOWS, max_share=0.5) if exact_grid(transform, objects.shape) \
        else None
    if windows is None:
        return trace(objects.label_image(), transform, srs, report)
    pieces, memory = _pieces_layer(srs)
    x0, dx, rx, y0, ry, dy = transform
    for number, ((row0, _, col0, _), labels) in enumerate(windows):
        if report is not None:
            report(number / len(windows))
        _polygonize(labels, (x0 + col0 * dx, dx, rx, y0 + row0 * dy, ry, dy), pieces)
    if report is not None:
        report(1.0)
    return _collected(pieces)


def trace_collapsed(labels, transform, srs, report=None) -> dict:
    """trace() of a label raster with few distinct rows (a tile's valid extent: most rows the
    same, bar the holes), the same bytes, but of the raster with each run of equal rows, then
    of equal columns, kept once: GDAL writes a vertex only where an outline turns, so the
    outlines of the small raster are the same rings with the row and column numbers of the
    kept ones; they are put back into its WKB (coordinates computed as GDAL computes them,
    exact on an exact_grid). Where over half of the rows differ from the one above, or the
    grid is not exact, the raster is traced as it is."""
    height, width = labels.shape
    if not (exact_grid(transform, labels.shape) and height and width):
        return trace(labels, transform, srs, report)
    rows = np.flatnonzero(_differs_from_previous(labels))
    if len(rows) > height // 2:
        return trace(labels, transform, srs, report)
    kept = labels[rows]
    cols = np.flatnonzero(_differs_from_previous(kept.T))
    x0, dx, _, y0, _, dy = transform
    # Edge numbers as coordinates, with the grid's signs (GDAL's ring orientation follows them).
    traced = trace(np.ascontiguousarray(kept[:, cols]), (0.0, math.copysign(1.0, dx), 0.0, 0.0, 0.0,
                                                         math.copysign(1.0, dy)), srs, report)
    xs = x0 + np.append(cols, width) * dx  # the x of each column edge of the small raster
    ys = y0 + np.append(rows, height) * dy
    _, ogr, _ = osgeo()
    return {label: ogr.CreateGeometryFromWkb(_wkb_placed(bytes(geometry.ExportToWkb(ogr.wkbNDR)), xs, ys))
            for label, geometry in traced.items()}


def _differs_from_previous(image) -> np.ndarray:
    """Whether each row of `image` differs from the row above (the first row: True), a strip of
    rows at a time (no full-size temporary)."""
    height, width = image.shape
    differs = np.ones(height, bool)
    step = max(1, (1 << 22) // max(width, 1))
    for top in range(1, height, step):
        bottom = min(height, top + step)
        differs[top:bottom] = (image[top:bottom] != image[top - 1:bottom - 1]).any(axis=1)
    return differs


def _wkb_placed(wkb: bytes, xs: np.ndarray, ys: np.ndarray) -> bytes:
    """A little-endian 2-D (Multi)Polygon WKB whose coordinates are column and row edge numbers
    (with a sign), with each replaced by xs[column] and ys[row]."""
    data = bytearray(wkb)
    kind = int.from_bytes(data[1:5], "little")
    offset, polygons = (9, int.from_bytes(data[5:9], "little")) if kind == 6 else (0, 1)
    for _ in range(polygons):
        rings = int.from_bytes(data[offset + 5:offset + 9], "little")
        offset += 9
        for _ in range(rings):
            points = int.from_bytes(data[offset:offset + 4], "little")
            offset += 4
            coordinates = np.frombuffer(data, "<f8", 2 * points, offset).reshape(points, 2)
            numbers = np.abs(coordinates).astype(np.int64)
            placed = np.stack([xs[numbers[:, 0]], ys[numbers[:, 1]]], axis=1)
            data[offset:offset + 16 * points] = placed.astype("<f8").tobytes()
            offset += 16 * points
    return bytes(data)


def exact_grid(transform, shape) -> bool:
    """Whether every pixel corner's coordinates are exact in doubles however they are summed:
    an unrotated grid whose origin and pixel size are multiples of 2**-8 (10 m, 3 m, 0.5 m
    grids at whole coordinates), with coordinates below 2**44. A window traced with its own
    origin then gives the bytes the whole raster gives."""
    x0, dx, rx, y0, ry, dy = transform
    if rx or ry or not all(float(value * 256).is_integer() for value in (x0, dx, y0, dy)):
        return False
    height, width = shape
    return max(abs(x0) + abs(dx) * width, abs(y0) + abs(dy) * height) < 2.0 ** 44


def _pieces_layer(srs):
    """An in-memory layer for GDAL's pieces (and its data source, which must outlive it)."""
    _, ogr, _ = osgeo()
    memory = ogr.GetDriverByName("Memory").CreateDataSource("pieces")
    pieces = memory.CreateLayer("pieces", srs, ogr.wkbPolygon)
    pieces.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    return pieces, memory


def _polygonize(labels, transform, pieces, report=None) -> None:
    """GDAL's 4-connected pieces of the non-zero labels into the layer `pieces`."""
    gdal, _, _ = osgeo()
    from osgeo import gdal_array

    raster = gdal_array.OpenArray(labels)  # wraps the array, no copy
    raster.SetGeoTransform(transform)
    band = raster.GetRasterBand(1)
    band.SetNoDataValue(0)  # the nodata mask keeps the background out of the tracing
    stopped = []

    def callback(complete, message, data):
        try:
            if report is not None:
                report(complete)
        except BaseException as error:  # the caller's cancel: stop GDAL, re-raise below
            stopped.append(error)
            return 0
        return 1

    try:
        gdal.Polygonize(band, band.GetMaskBand(), pieces, 0, [], callback=callback if report is not None else None)
    except RuntimeError:
        if not stopped:
            raise
    if stopped:
        raise stopped[0]


def _collected(pieces) -> dict:
    """{label: MultiPolygon of its pieces, in the order GDAL wrote them}."""
    _, ogr, _ = osgeo()
    geometries = {}
    pieces.ResetReading()
    for feature in pieces:
        label = feature.GetField(0)
        if label not in geometries:
            geometries[label] = ogr.Geometry(ogr.wkbMultiPolygon)
        geometries[label].AddGeometry(feature.GetGeometryRef())
    return geometries


FIELDS = ("Region_ID", *STATISTICS, "npixel", "area_m2")
MERGED_FIELDS = ("tile_id", "date", "year", *FIELDS, "n_tiles")  # a map merged from tiles (tiles.py)


def write_layer(path, layer_name, srs, fields, geometries, report=None, append=False, layout: Layout | None = None,
                *, feature_ids="Region_ID", add_layer=False):
    """Write features into a GeoPackage layer: a new file (append=False, with `layout.tags`
    as the file's and the layer's metadata) or added to the existing layer (append=True, for
    polygons written block by block). `fields` maps names of MERGED_FIELDS to one value per
    geometry (a MultiPolygon per object); the feature id is the `feature_ids` field (None:
    numbered by GDAL), or with `layout.parts` each polygon of an object is a feature of its
    own, numbered in order. `add_layer`: a new layer in the existing GeoPackage `path`."""
    _, ogr, _ = osgeo()
    layout = layout or Layout()
    integers = {"Region_ID", "npixel", "n_tiles", "year", *(("min", "max") if layout.statistics == "percent" else ())}
    kinds = {name: ogr.OFTInteger64 if name in integers else ogr.OFTReal for name in MERGED_FIELDS}
    kinds.update(tile_id=ogr.OFTString, date=ogr.OFTDate)
    with gdal_writing(path):
        if append:
            dataset = ogr.Open(path, 1)
            layer = dataset.GetLayerByName(layer_name)
        else:
            dataset = ogr.Open(path, 1) if add_layer else ogr.GetDriverByName("GPKG").CreateDataSource(path)
            layer = dataset.CreateLayer(layer_name, srs, ogr.wkbPolygon if layout.parts else ogr.wkbMultiPolygon,
                                        ["FID=fid", f"GEOMETRY_NAME={layout.geometry_name}"])
            from .tags import apply_metadata

            apply_metadata(dataset, layout.tags)
            apply_metadata(layer, layout.tags)
        try:
            order = [name for name in MERGED_FIELDS if name in fields]
            if not append:
                for name in order:
                    layer.CreateField(ogr.FieldDefn(name, kinds[name]))
            definition = layer.GetLayerDefn()
            columns = [_field_values(fields[name], name in integers) for name in order]
            # Integer64 fields' setter called directly (ogr's SetField looks at every value's type
            # to call it); the others through SetField
            setters = [ogr.Feature.SetFieldInteger64 if name in integers else ogr.Feature.SetField for name in order]
            ids = columns[order.index(feature_ids)] if feature_ids in order and not layout.parts else None
            layer.StartTransaction()
            for index, geometry in enumerate(geometries):
                for piece in (list(geometry) if layout.parts else [geometry]):
                    feature = ogr.Feature(definition)
                    if ids is not None:
                        feature.SetFID(ids[index])
                    for position, (column, set_value) in enumerate(zip(columns, setters)):
                        value = column[index]
                        if value is None:
                            feature.SetFieldNull(position)
                        else:
                            set_value(feature, position, value)
                    if layout.parts:
                        feature.SetGeometry(piece)  # a copy: the part belongs to its object
                    else:
                        feature.SetGeometryDirectly(piece)
                    layer.CreateFeature(feature)
                if report is not None and index % 2000 == 1999:
                    report(index / len(geometries))
            layer.CommitTransaction()
            dataset.FlushCache()  # writes the spatial index: a full disk shows here
        finally:
            dataset = layer = definition = feature = None  # closes the file


def _field_values(values, integer: bool) -> list:
    """A field's values for OGR: None for NaN (a NULL field), Python ints for an Integer64
    field (int() of each value: a float too large for it raises)."""
    array = np.asarray(values)
    if array.dtype.kind in "iu" or (array.dtype.kind == "f" and not integer and not np.isnan(array).any()):
        return array.tolist()  # (numpy's ints and floats as Python's, none missing)
    return [None if value is None or (isinstance(value, float) and math.isnan(value))
            else (int(value) if integer else value) for value in array.tolist()]


def layer_name(path: str) -> str:
    """The default layer name of a GeoPackage: the file's name without extension."""
    return os.path.splitext(os.path.basename(path))[0]
