"""Exclusion masks (water, glaciers, ...): where no object may be, on a tile's grid.

A mask comes as polygons or as a raster:

- Polygons (any OGR vector layer, in any CRS) are burnt onto the grid with GDAL's rasterizer:
  a pixel is excluded when its centre lies inside a polygon (GDAL's default rule; not "all
  touched", so a polygon's outline does not widen the mask by a pixel). A layer in another
  CRS is reprojected by GDAL on the fly; a layer without a CRS is taken to be in the grid's.
- A raster must lie on exactly the grid (CRS, size, pixel size, origin): resampling a mask
  decides which objects survive, so that step is the user's, made visible (e.g. 'Warp
  (reproject)' with nearest neighbour, or 'Align rasters'), as for the quality mask. Its
  non-zero pixels are excluded; nodata and NaN are not.

`exclusion_mask` gives the bool mask of one tile for `prepare_export(..., exclude=)`;
`exclusion_mask_lazy` the same, block by block, for rasters larger than memory (polygons are
first burnt into a GeoTIFF on the grid, which GDAL writes a strip at a time). Both give the
same pixels. No QGIS import here.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from .gdal import open_read_only, osgeo, spatial_reference
from .grids import grid_differences

POLYGON_TYPES = ("POLYGON", "MULTIPOLYGON", "CURVEPOLYGON", "MULTISURFACE", "GEOMETRY", "UNKNOWN")


def decode_exclusion(data: np.ndarray, nodata) -> np.ndarray:
    """Excluded pixels of a mask raster: non-zero, and neither nodata nor NaN."""
    excluded = data != 0
    if data.dtype.kind == "f":
        excluded &= ~np.isnan(data)
    if nodata is not None and not np.isnan(nodata):
        excluded &= data != nodata
    return excluded


DELIMITED = (".csv", ".tsv", ".txt")  # delimited text: polygons as WKT in a column of one of GEOMETRY_NAMES
GEOMETRY_NAMES = "WKT,geometry,geom,the_geom,wkt_geom"


@contextlib.contextmanager
def open_vector(source: str):
    """`with open_vector(source) as dataset:` GDAL's vector dataset of `source` (delimited text
    with its WKT column read as the geometry), read-only and leaving nothing beside it
    (files.open_read_only); raises RuntimeError when it is none."""
    options = ([f"GEOM_POSSIBLE_NAMES={GEOMETRY_NAMES}", "KEEP_GEOM_COLUMNS=NO"]
               if source.lower().endswith(DELIMITED) else [])
    with open_read_only(source, "vector", options=options) as dataset:
        yield dataset


def is_vector(source: str) -> bool:
    """Whether GDAL reads `source` as vector layers (else it must be a raster)."""
    with contextlib.suppress(RuntimeError), open_vector(source) as dataset:
        return dataset is not None and dataset.GetLayerCount() > 0
    return False


def exclusion_mask(source: str, shape, geotransform, crs, *, layer: str | None = None, where: str | None = None,
                   what: str = "exclusion mask", info: dict | None = None) -> np.ndarray:
    """The bool mask (True = excluded) on the grid `shape` (height, width), `geotransform`
    (GDAL order; None: pixel coordinates) and `crs` (WKT, 'EPSG:n' or None) of the polygon
    layer `layer` of `source` (selected by the OGR SQL `where`, optional), or of the raster
    `source` on that same grid. `what` names the input in error messages. For polygons,
    `info["overlaps"]` (when `info` is given) says whether some polygon overlaps the grid's
    outline in the polygons' own CRS (a mask that then excludes no pixel deserves a warning)."""
    if is_vector(source):
        gdal, _, _ = osgeo()
        memory = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Byte)
        _set_grid(memory, geotransform, crs)
        overlaps = burn_polygons(source, memory, layer, where, crs, what)
        if info is not None:
            info["overlaps"] = overlaps
        return memory.GetRasterBand(1).ReadAsArray() != 0
    from .geotiff import open_raster, read_pixels

    with open_raster(source, what) as dataset:
        check_on_grid(dataset, shape, geotransform, crs, what)
        band = dataset.GetRasterBand(1)
        return decode_exclusion(read_pixels(band, source, what), band.GetNoDataValue())


def _set_grid(dataset, geotransform, crs) -> None:
    from .gdal import gdal_geotransform

    if geotransform is not None:
        dataset.SetGeoTransform(gdal_geotransform(geotransform))
    srs = spatial_reference(crs)
    if srs is not None:
        dataset.SetSpatialRef(srs)


def check_on_grid(dataset, shape, geotransform, crs, what: str) -> None:
    """Raise unless the raster `dataset` lies on the grid."""
    srs = spatial_reference(crs)
    problems = grid_differences((shape[1], shape[0]), tuple(geotransform or (0, 1, 0, 0, 0, 1)),
                                srs.ExportToWkt() if srs is not None else "",
                                (dataset.RasterXSize, dataset.RasterYSize), dataset.GetGeoTransform(),
                                dataset.GetProjection())
    if problems:
        raise ValueError(f"{what} is a raster, but not on the probabilities' grid: {'; '.join(problems)}. Warp it onto "
                         f"that grid first (e.g. 'Warp (reproject)' with nearest neighbour, or 'Align rasters'), or give "
                         f"the mask as polygons")


def burn_polygons(source: str, dataset, layer: str | None, where: str | None, crs, what: str) -> bool:
    """Burn 1 into `dataset` (on the grid, in `crs`) where the polygons of `layer` (the only
    one when None) of `source` lie; whether some polygon overlaps the grid in its own CRS."""
    gdal, _, _ = osgeo()
    polygons, overlaps = _polygons_on_grid(source, layer, where, crs, dataset, what)
    gdal.Rasterize(dataset, polygons, layers=["polygons"], burnValues=[1])
    return overlaps


def polygons_on_grid(source: str, shape, geotransform, crs, *, layer: str | None = None, where: str | None = None,
                     what: str = "polygons"):
    """The chosen polygons of `source` (as exclusion_mask reads them) reprojected into the CRS of
    the grid `shape`, `geotransform`, `crs`: an in-memory OGR dataset whose layer 'polygons'
    keeps each feature's source FID (for callers that burn or report features one by one)."""
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Byte)
    _set_grid(memory, geotransform, crs)
    return _polygons_on_grid(source, layer, where, crs, memory, what)[0]


def crs_of(polygons):
    """The CRS of an OGR layer, None when it has none (GeoPackage's srs_id 0 / -1 are an
    'Undefined' CRS, which means none)."""
    srs = polygons.GetSpatialRef()
    return None if srs is None or srs.GetName().lower().startswith("undefined") else srs


def polygons_without_crs(source: str, layer: str | None = None) -> bool:
    """Whether the polygon layer `layer` (default: the only one) of `source` has no CRS (it is
    then read in the grid's CRS); False for a raster or a file GDAL cannot read as vectors."""
    with contextlib.suppress(RuntimeError), open_vector(source) as vector:
        polygons = vector.GetLayerByName(layer) if layer else vector.GetLayer(0) if vector.GetLayerCount() else None
        return polygons is not None and crs_of(polygons) is None
    return False


@contextlib.contextmanager
def open_polygons(source: str, layer: str | None, where: str | None, what: str = "exclusion mask"):
    """`with open_polygons(...) as (OGR layer, layer name):` the polygons of `layer` (the only
    one when None) of `source`, selected by `where`, the file open read-only until the end of
    the block: a missing file or layer, a layer of lines or points, or a bad `where` is a
    clear error (checked before any tile is read, too)."""
    with contextlib.ExitStack() as stack:
        try:
            vector = stack.enter_context(open_vector(source))
        except RuntimeError:
            vector = None
        yield from _checked_polygons(vector, source, layer, where, what)


def _checked_polygons(vector, source, layer, where, what):
    _, ogr, _ = osgeo()
    if vector is None or not vector.GetLayerCount():
        raise ValueError(f"{what}: {source!r} " + ("does not exist" if not os.path.exists(source) else
                                                  "holds no polygon layer GDAL can read (a raster is no mask here)"))
    names = [vector.GetLayer(index).GetName() for index in range(vector.GetLayerCount())]
    if layer is None:
        if len(names) != 1:
            raise ValueError(f"{what}: {source!r} has {len(names)} layers ({', '.join(names)}): name one, "
                             f"as {source}|layername=NAME")
        layer = names[0]
    elif layer not in names:
        raise ValueError(f"{what}: {source!r} has no layer {layer!r} (has: {', '.join(names)})")
    polygons = vector.GetLayerByName(layer)
    kind = ogr.GeometryTypeToName(ogr.GT_Flatten(polygons.GetGeomType())).upper().replace(" ", "")
    kind = kind.replace("(ANY)", "")  # "Unknown (any)": a layer of any geometry (delimited text, shapefile-less)
    if kind not in POLYGON_TYPES:
        raise ValueError(f"{what}: layer {layer!r} holds {kind.lower()} geometries, but an exclusion mask must be polygons")
    if where:
        try:
            polygons.SetAttributeFilter(where)
        except RuntimeError as error:
            raise ValueError(f"{what}: cannot select features of layer {layer!r} with {where!r}: {error}") from None
    yield polygons, layer


def _polygons_on_grid(source: str, layer: str | None, where: str | None, crs, dataset, what: str):
    """An in-memory OGR dataset whose layer 'polygons' holds the chosen polygons in the grid's
    CRS. Reprojected here, not by the rasterizer, so a geometry that cannot be reprojected is
    an error (GDAL's rasterizer would skip it and leave a silently smaller mask)."""
    gdal, ogr, osr = osgeo()
    with open_polygons(source, layer, where, what) as (polygons, layer):
        layer_srs = crs_of(polygons)
        grid_srs = spatial_reference(crs)
        if layer_srs is not None and grid_srs is None:
            raise ValueError(f"{what}: the polygons have a CRS but the probabilities raster has none, so they cannot be "
                             f"placed on it")
        transform, window, outline = None, None, None
        if layer_srs is not None and not layer_srs.IsSame(grid_srs):
            transform = osr.CoordinateTransformation(layer_srs, grid_srs)
            window, outline = _grid_in_layer_crs(dataset, osr.CoordinateTransformation(grid_srs, layer_srs))
            if window is not None:
                polygons.SetSpatialFilterRect(*window)
        else:
            outline = _grid_outline(dataset)
        memory = gdal.GetDriverByName("Memory").Create("", 0, 0, 0, gdal.GDT_Unknown)
        target = memory.CreateLayer("polygons", grid_srs, ogr.wkbUnknown)
        overlaps = False
        try:
            for feature in polygons:
                geometry = feature.GetGeometryRef()
                if geometry is None:
                    continue
                geometry = geometry.Clone()
                shape = ogr.GeometryTypeToName(ogr.GT_Flatten(geometry.GetGeometryType())).upper().replace(" ", "")
                if shape not in POLYGON_TYPES:  # in a layer of any geometry: each feature must be polygons
                    raise ValueError(f"{what}: feature {feature.GetFID()} of layer {layer!r} is a {shape.lower()}, but an "
                                     f"exclusion mask must be polygons")
                overlaps = overlaps or outline is None or geometry.Intersects(outline)
                if transform is not None and not (_transformed(geometry.Clone(), transform)  # every vertex, as drawn
                                                  and _transformed(geometry := _densified_near(geometry, window),
                                                                   transform)):
                    raise ValueError(f"{what}: cannot reproject feature {feature.GetFID()} of layer {layer!r} onto the "
                                     f"probabilities' CRS")
                copy = ogr.Feature(target.GetLayerDefn())
                copy.SetGeometry(geometry)
                copy.SetFID(feature.GetFID())  # the source's FID, so a reader can say which feature it was
                target.CreateFeature(copy)
        except RuntimeError as error:  # GDAL's: a bad `where`, a damaged file, a failed reprojection
            raise ValueError(f"{what}: cannot read the polygons of layer {layer!r} of {source!r}: {error}") from None
        return memory, overlaps


def _transformed(geometry, transform) -> bool:
    """Reproject `geometry` in place; False when some point cannot be (GDAL raises or not, by version)."""
    try:
        return geometry.Transform(transform) == 0
    except RuntimeError:
        return False


EDGE_STEPS = 256  # a polygon's edges near a grid are cut into pieces of 1/256 of the grid's size in the layer's CRS


def _grid_points(dataset, steps: int = 64):
    """(xs, ys) of the grid's outline, `steps` points a side (pixel corners, the grid's CRS)."""
    width, height = dataset.RasterXSize, dataset.RasterYSize
    x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()
    t = np.linspace(0.0, 1.0, steps, endpoint=False)
    cols = np.concatenate([t * width, np.full(steps, width), (1 - t) * width, np.zeros(steps)])
    rows = np.concatenate([np.zeros(steps), t * height, np.full(steps, height), (1 - t) * height])
    return x0 + dx * cols + rx * rows, y0 + ry * cols + dy * rows


def _ring(xs, ys):
    _, ogr, _ = osgeo()
    ring = ogr.Geometry(ogr.wkbLinearRing)
    for x, y in zip(xs, ys):
        ring.AddPoint_2D(float(x), float(y))
    ring.CloseRings()
    polygon = ogr.Geometry(ogr.wkbPolygon)
    polygon.AddGeometry(ring)
    return polygon


def _grid_outline(dataset):
    return _ring(*_grid_points(dataset, 1))


def _grid_in_layer_crs(dataset, to_layer):
    """(window, outline) of the grid in the layer's CRS: the bounds (min x, max x, min y,
    max y, with a margin) to read only features near the grid (a continent-wide water layer
    for one tile) and cut them to, and the grid's densified outline; (None, None) when they
    cannot be computed (a grid partly outside the layer CRS's area)."""
    xs, ys = _grid_points(dataset)
    try:
        points = np.array(to_layer.TransformPoints(np.column_stack([xs, ys]).tolist()))[:, :2]
    except RuntimeError:
        return None, None
    if not np.isfinite(points).all():
        return None, None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    margin = 0.01 * max(x1 - x0, y1 - y0)
    return (x0 - margin, y0 - margin, x1 + margin, y1 + margin), _ring(points[:, 0], points[:, 1])


def _densified_near(geometry, window):
    """`geometry` (in the layer's CRS) cut to `window` and its edges cut into short pieces, so
    that reprojected it follows its edges as drawn in its CRS (a lat/lon box's edges are
    parallels and meridians, which become curves): reprojecting the vertices alone would
    join them with straight lines (a 4-vertex box over 60-90°N then covered nothing)."""
    if window is None:
        return geometry
    _, ogr, _ = osgeo()
    x0, y0, x1, y1 = window
    box = ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
    try:
        kept = geometry.Intersection(box)
    except RuntimeError:  # an invalid polygon: densified whole instead
        kept = None
    kept = geometry.Clone() if kept is None else kept
    kept.Segmentize(max(x1 - x0, y1 - y0) / EDGE_STEPS)
    return kept
