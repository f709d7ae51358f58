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
import math

import numpy as np

from .files import create_geotiff, gdal_writing, osgeo, spatial_reference
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


def is_vector(source: str) -> bool:
    """Whether GDAL reads `source` as vector layers (else it must be a raster)."""
    gdal, _, _ = osgeo()
    with contextlib.suppress(RuntimeError):
        dataset = gdal.OpenEx(source, gdal.OF_VECTOR)
        return dataset is not None and dataset.GetLayerCount() > 0
    return False


def exclusion_mask(source: str, shape, geotransform, crs, *, layer: str | None = None, where: str | None = None,
                   what: str = "exclusion mask") -> np.ndarray:
    """The bool mask (True = excluded) on the grid `shape` (height, width), `geotransform`
    (GDAL order; None: pixel coordinates) and `crs` (WKT, 'EPSG:n' or None) of the polygon
    layer `layer` of `source` (selected by the OGR SQL `where`, optional), or of the raster
    `source` on that same grid. `what` names the input in error messages."""
    if is_vector(source):
        gdal, _, _ = osgeo()
        memory = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Byte)
        _set_grid(memory, geotransform, crs)
        _burn(source, memory, layer, where, crs, what)
        return memory.GetRasterBand(1).ReadAsArray() != 0
    dataset = _raster_on_grid(source, shape, geotransform, crs, what)
    from .blockwise import read_pixels

    band = dataset.GetRasterBand(1)
    return decode_exclusion(read_pixels(band, source, what), band.GetNoDataValue())


def exclusion_mask_lazy(source: str, shape, geotransform, crs, block: int, scratch: str, *, layer: str | None = None,
                        where: str | None = None, what: str = "exclusion mask"):
    """exclusion_mask as a dask bool array of `block` x `block` chunks, never whole in memory:
    polygons are first burnt into the GeoTIFF `scratch` (a temporary file the caller removes)."""
    from .blockwise import read_lazy

    if is_vector(source):
        with gdal_writing(scratch):
            dataset = create_geotiff(scratch, shape, np.uint8, geotransform, crs)
            try:
                _burn(source, dataset, layer, where, crs, what)
                dataset.FlushCache()
            finally:
                dataset = None
        source, what = scratch, f"{what} (burnt onto the grid)"
    else:
        _raster_on_grid(source, shape, geotransform, crs, what)
    raw, nodata = read_lazy(source, block, what)
    return raw.map_blocks(decode_exclusion, nodata, dtype=bool, meta=np.zeros((0, 0), bool))


def _set_grid(dataset, geotransform, crs) -> None:
    from .files import gdal_geotransform

    if geotransform is not None:
        dataset.SetGeoTransform(gdal_geotransform(geotransform))
    srs = spatial_reference(crs)
    if srs is not None:
        dataset.SetSpatialRef(srs)


def _raster_on_grid(source: str, shape, geotransform, crs, what: str):
    """The single-band raster `source`, checked to lie on the grid."""
    from .blockwise import open_raster

    dataset = open_raster(source, what)
    srs = spatial_reference(crs)
    problems = grid_differences((shape[1], shape[0]), tuple(geotransform or (0, 1, 0, 0, 0, 1)),
                                srs.ExportToWkt() if srs is not None else "",
                                (dataset.RasterXSize, dataset.RasterYSize), dataset.GetGeoTransform(),
                                dataset.GetProjection())
    if problems:
        raise ValueError(f"{what} is a raster, but not on the probabilities' grid: {'; '.join(problems)}. Warp it onto "
                         f"that grid first (e.g. 'Warp (reproject)' with nearest neighbour, or 'Align rasters'), or give "
                         f"the mask as polygons")
    return dataset


def _burn(source: str, dataset, layer: str | None, where: str | None, crs, what: str) -> None:
    """Burn 1 into `dataset` (on the grid, in `crs`) where the polygons of `layer` (the only
    one when None) of `source` lie."""
    gdal, _, _ = osgeo()
    polygons = _polygons_on_grid(source, layer, where, crs, dataset, what)
    gdal.Rasterize(dataset, polygons, layers=["polygons"], burnValues=[1])


def polygons_on_grid(source: str, shape, geotransform, crs, *, layer: str | None = None, where: str | None = None,
                     what: str = "polygons"):
    """The chosen polygons of `source` (as exclusion_mask reads them) reprojected into the CRS of
    the grid `shape`, `geotransform`, `crs`: an in-memory OGR dataset whose layer 'polygons'
    keeps each feature's source FID (for callers that burn or report features one by one)."""
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", shape[1], shape[0], 1, gdal.GDT_Byte)
    _set_grid(memory, geotransform, crs)
    return _polygons_on_grid(source, layer, where, crs, memory, what)


def crs_of(polygons):
    """The CRS of an OGR layer, None when it has none (GeoPackage's srs_id 0 / -1 are an
    'Undefined' CRS, which means none)."""
    srs = polygons.GetSpatialRef()
    return None if srs is None or srs.GetName().lower().startswith("undefined") else srs


def polygons_without_crs(source: str, layer: str | None = None) -> bool:
    """Whether the polygon layer `layer` (default: the only one) of `source` has no CRS (it is
    then read in the grid's CRS); False for a raster or a file GDAL cannot read as vectors."""
    gdal, _, _ = osgeo()
    try:
        vector = gdal.OpenEx(source, gdal.OF_VECTOR)
    except RuntimeError:
        return False
    polygons = vector.GetLayerByName(layer) if layer else vector.GetLayer(0) if vector.GetLayerCount() else None
    return polygons is not None and crs_of(polygons) is None


def _polygons_on_grid(source: str, layer: str | None, where: str | None, crs, dataset, what: str):
    """An in-memory OGR dataset whose layer 'polygons' holds the chosen polygons in the grid's
    CRS. Reprojected here, not by the rasterizer, so a geometry that cannot be reprojected is
    an error (GDAL's rasterizer would skip it and leave a silently smaller mask)."""
    gdal, ogr, osr = osgeo()
    vector = gdal.OpenEx(source, gdal.OF_VECTOR)
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
    if kind not in POLYGON_TYPES:
        raise ValueError(f"{what}: layer {layer!r} holds {kind.lower()} geometries, but an exclusion mask must be polygons")
    if where:
        try:
            polygons.SetAttributeFilter(where)
        except RuntimeError as error:
            raise ValueError(f"{what}: cannot select features of layer {layer!r} with {where!r}: {error}") from None
    layer_srs = crs_of(polygons)
    grid_srs = spatial_reference(crs)
    if layer_srs is not None and grid_srs is None:
        raise ValueError(f"{what}: the polygons have a CRS but the probabilities raster has none, so they cannot be "
                         f"placed on it")
    transform = None
    if layer_srs is not None and not layer_srs.IsSame(grid_srs):
        transform = osr.CoordinateTransformation(layer_srs, grid_srs)
        _filter_to_grid(polygons, dataset, osr.CoordinateTransformation(grid_srs, layer_srs))
    memory = gdal.GetDriverByName("Memory").Create("", 0, 0, 0, gdal.GDT_Unknown)
    target = memory.CreateLayer("polygons", grid_srs, ogr.wkbUnknown)
    try:
        for feature in polygons:
            geometry = feature.GetGeometryRef()
            if geometry is None:
                continue
            geometry = geometry.Clone()
            if transform is not None and not _transformed(geometry, transform):
                raise ValueError(f"{what}: cannot reproject feature {feature.GetFID()} of layer {layer!r} onto the "
                                 f"probabilities' CRS")
            copy = ogr.Feature(target.GetLayerDefn())
            copy.SetGeometry(geometry)
            copy.SetFID(feature.GetFID())  # the source's FID, so a reader can say which feature it was
            target.CreateFeature(copy)
    except RuntimeError as error:  # GDAL's: a bad `where`, a damaged file, a failed reprojection
        raise ValueError(f"{what}: cannot read the polygons of layer {layer!r} of {source!r}: {error}") from None
    return memory


def _transformed(geometry, transform) -> bool:
    """Reproject `geometry` in place; False when some point cannot be (GDAL raises or not, by version)."""
    try:
        return geometry.Transform(transform) == 0
    except RuntimeError:
        return False


def _filter_to_grid(polygons, dataset, to_layer) -> None:
    """Read only the features near the grid (a continent-wide water layer for one tile): the
    grid's bounds in the layer's CRS, densified; no filter when they cannot be computed."""
    width, height = dataset.RasterXSize, dataset.RasterYSize
    x0, dx, rx, y0, ry, dy = dataset.GetGeoTransform()
    xs = [x0 + dx * c + rx * r for c, r in ((0, 0), (width, 0), (0, height), (width, height))]
    ys = [y0 + ry * c + dy * r for c, r in ((0, 0), (width, 0), (0, height), (width, height))]
    try:
        bounds = to_layer.TransformBounds(min(xs), min(ys), max(xs), max(ys), 21)
    except (RuntimeError, AttributeError):  # a grid partly outside the layer CRS's area; GDAL < 3.4
        return
    if all(math.isfinite(value) for value in bounds):
        polygons.SetSpatialFilterRect(*bounds)
