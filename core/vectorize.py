"""Objects of a binary raster as GeoPackage polygons with per-object statistics.

Every 8-connected object becomes one MultiPolygon feature that follows the pixel edges,
holes included, nothing simplified. GDAL traces the pieces with 4-connectivity (which
gives valid polygons); pieces of one object, which touch only at corners, are then joined
into one MultiPolygon. Tracing 8-connected regions directly would give rings that touch
themselves: invalid geometries. Upstream DARTS writes each piece as its own feature.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from .files import AtomicFiles, gdal_geotransform, gdal_writing, osgeo, spatial_reference
from .objects import STATISTICS, Objects

AUTHALIC_RADIUS_M = 6371007.181  # sphere of the WGS 84 ellipsoid's surface area
Progress = Callable[[float, str], None]


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


def object_areas(binary, geotransform, crs=None) -> np.ndarray:
    """Area in m² of each 8-connected object of `binary`, in Region_ID order."""
    objects = Objects(binary)
    return objects.rows_weighted(row_pixel_areas(geotransform, objects.shape[0], spatial_reference(crs)))


def polygonize(binary, geotransform, crs, path: str, layer: str | None = None, probabilities=None,
               progress: Progress | None = None) -> int:
    """Write the 8-connected objects of `binary` (non-zero pixels) to the GeoPackage `path`.

    Attributes: Region_ID (1..n, row-major order of first pixel), npixel, area_m2 and, when
    `probabilities` (0..1, NaN ignored) is given, their min, max, mean, median and std
    (population) inside each object. `layer` defaults to the file's name without extension.
    `progress(fraction, message)` is called along the way; it may raise to cancel.
    Returns the number of features.
    """
    gdal, ogr, _ = osgeo()
    from osgeo import gdal_array

    report = progress or (lambda fraction, message: None)
    transform = gdal_geotransform(geotransform)
    srs = spatial_reference(crs)
    layer = layer or layer_name(path)

    report(0.0, "Labelling objects")
    objects = Objects(binary)
    fields = {"Region_ID": np.arange(1, objects.count + 1), "npixel": objects.npixel()}
    if probabilities is not None:
        report(0.15, "Object statistics")
        fields.update(objects.statistics(probabilities))
    fields["area_m2"] = objects.rows_weighted(row_pixel_areas(transform, objects.shape[0], srs))

    report(0.3, "Tracing polygons")
    geometries = _trace(gdal, ogr, gdal_array, objects.label_image(), objects.count, transform, srs, report)
    del objects

    report(0.8, "Writing polygons")
    with AtomicFiles() as files:  # a canceled or failed run leaves no half-written file
        _write_layer(ogr, files.reserve(path), layer, srs, fields, geometries,
                     lambda f: report(0.8 + 0.2 * f, "Writing polygons"))
    report(1.0, "Done")
    return len(geometries)


def _trace(gdal, ogr, gdal_array, labels, count, transform, srs, report) -> list:
    """One MultiPolygon per label 1..count, from GDAL's 4-connected pieces of the label raster."""
    raster = gdal_array.OpenArray(labels)  # wraps the array, no copy
    raster.SetGeoTransform(transform)
    band = raster.GetRasterBand(1)
    band.SetNoDataValue(0)  # the nodata mask keeps the background out of the tracing
    memory = ogr.GetDriverByName("Memory").CreateDataSource("pieces")
    pieces = memory.CreateLayer("pieces", srs, ogr.wkbPolygon)
    pieces.CreateField(ogr.FieldDefn("label", ogr.OFTInteger))
    stopped = []

    def callback(complete, message, data):
        try:
            report(0.3 + 0.5 * complete, "Tracing polygons")
        except BaseException as error:  # the caller's cancel: stop GDAL, re-raise below
            stopped.append(error)
            return 0
        return 1

    try:
        gdal.Polygonize(band, band.GetMaskBand(), pieces, 0, [], callback=callback)
    except RuntimeError:
        if not stopped:
            raise
    if stopped:
        raise stopped[0]
    geometries = [None] * count
    pieces.ResetReading()
    for feature in pieces:
        index = feature.GetField(0) - 1
        if geometries[index] is None:
            geometries[index] = ogr.Geometry(ogr.wkbMultiPolygon)
        geometries[index].AddGeometry(feature.GetGeometryRef())
    return geometries


def _write_layer(ogr, path, layer_name, srs, fields, geometries, report):
    kinds = {"Region_ID": ogr.OFTInteger, "npixel": ogr.OFTInteger, "area_m2": ogr.OFTReal}
    kinds.update({name: ogr.OFTReal for name in STATISTICS})
    with gdal_writing(path):
        dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
        try:
            layer = dataset.CreateLayer(layer_name, srs, ogr.wkbMultiPolygon, ["FID=fid", "GEOMETRY_NAME=geometry"])
            order = [name for name in ("Region_ID", *STATISTICS, "npixel", "area_m2") if name in fields]
            for name in order:
                layer.CreateField(ogr.FieldDefn(name, kinds[name]))
            definition = layer.GetLayerDefn()
            columns = [fields[name].tolist() for name in order]
            layer.StartTransaction()
            for index, geometry in enumerate(geometries):
                feature = ogr.Feature(definition)
                for position, column in enumerate(columns):
                    value = column[index]
                    if isinstance(value, float) and math.isnan(value):
                        feature.SetFieldNull(position)
                    else:
                        feature.SetField(position, value)
                feature.SetGeometryDirectly(geometry)
                layer.CreateFeature(feature)
                if index % 2000 == 1999:
                    report(index / len(geometries))
            layer.CommitTransaction()
            dataset.FlushCache()  # writes the spatial index: a full disk shows here
        finally:
            dataset = layer = definition = feature = None  # closes the file


def layer_name(path: str) -> str:
    """The default layer name of a GeoPackage: the file's name without extension."""
    return os.path.splitext(os.path.basename(path))[0]
