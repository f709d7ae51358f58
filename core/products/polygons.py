"""Objects of a binary raster as GeoPackage polygons with per-object statistics (`polygonize`)
and their areas (`object_areas`): in memory with the kernels and files.layers, or for a dask
raster block by block (lazy.chunked_polygons).
"""

from __future__ import annotations

import numpy as np

from ...definitions import Progress
from ..files.atomic import AtomicFiles
from ..files.gdal import gdal_geotransform, spatial_reference
from ..files.layers import Layout, layer_name, row_pixel_areas, trace_objects, write_layer
from ..kernels.devices import dask_array, is_dask
from ..kernels.encodings import check_stored_percent, percent_lookup, statistics_values
from ..kernels.objects import Objects


def object_areas(binary, geotransform, crs=None, objects: Objects | None = None) -> np.ndarray:
    """Area in m² of each 8-connected object of `binary`, in Region_ID order (for a dask
    `binary`: a dask Delayed of it). `objects` (an Objects of an in-memory `binary`) saves
    labelling it again."""
    if is_dask(binary):
        from ..lazy.chunked import object_areas_lazy

        areas = row_pixel_areas(geotransform, binary.shape[0], spatial_reference(crs))
        return object_areas_lazy(dask_array(binary), areas)
    objects = objects or Objects(binary)
    return objects.rows_weighted(row_pixel_areas(geotransform, objects.shape[0], spatial_reference(crs)))


def polygonize(binary, geotransform, crs, path: str, layer: str | None = None, probabilities=None,
               progress: Progress | None = None, *, lock=None, layout: Layout | None = None,
               objects: Objects | None = None) -> int:
    """Write the 8-connected objects of `binary` (non-zero pixels) to the GeoPackage `path`.

    Attributes: Region_ID (1..n, row-major order of first pixel), npixel, area_m2 and, when
    `probabilities` (float 0..1, NaN ignored, or DARTS' uint8 percent, 255 ignored) are given,
    their min, max, mean, median and std (population) inside each object, in the scale of
    `layout.statistics`. `layer` defaults to the file's name without extension. `layout`
    (default Layout()): statistics scale, features per object or per part, geometry column,
    metadata. `progress(fraction, message)` is called along the way; it may raise to cancel.
    Returns the number of objects. A dask `binary` (and `probabilities`) gives instead a dask
    Delayed that writes the file block by block when computed and gives the number of objects
    (chunked_polygons.py); `lock` serializes its writes (default: one for the threaded
    scheduler; with worker processes, local or a cluster, pass a `distributed.Lock`).
    `objects` (an Objects of an in-memory `binary`) saves labelling it again.
    """

    layer = layer or layer_name(path)
    layout = layout or Layout()
    if is_dask(binary):
        from ..lazy.chunked_polygons import polygonize_file_lazy

        values = dask_array(probabilities) if probabilities is not None and is_dask(probabilities) else probabilities
        return polygonize_file_lazy(dask_array(binary), geotransform, crs, path, layer, values, lock, layout)
    report = progress or (lambda fraction, message: None)
    srs = spatial_reference(crs)
    values, lookup = _statistics_values(probabilities, layout.statistics)
    fields, geometries = object_features(binary, geotransform, srs, values, lambda f, m: report(0.8 * f, m), objects,
                                         lookup)
    report(0.8, "Writing polygons")
    with AtomicFiles() as files:  # a canceled or failed run leaves no half-written file
        write_layer(files.reserve(path), layer, srs, fields, geometries,
                    lambda f: report(0.8 + 0.2 * f, "Writing polygons"), layout=layout)
    report(1.0, "Done")
    return len(geometries)


def _statistics_values(probabilities, scale: str):
    """(values, lookup) for Objects.table: DARTS' uint8 percent on the host stays uint8, each
    object pixel looked up as the float32 statistics_values would give it (the same values,
    without its full-raster float copy); anything else statistics_values, no lookup."""
    if probabilities is None:
        return None, None
    if isinstance(probabilities, np.ndarray) and probabilities.dtype == np.uint8:
        check_stored_percent(probabilities)
        return probabilities, percent_lookup(scale)
    return statistics_values(probabilities, scale), None


def object_features(binary, geotransform, srs, probabilities=None, progress: Progress | None = None, objects=None,
                    lookup=None):
    """(fields, geometries) of the 8-connected objects of `binary`, as polygonize writes them:
    FIELDS' columns (statistics only with `probabilities`) and one OGR MultiPolygon each, in
    Region_ID order. `objects` (an Objects of `binary`) saves labelling it again; `lookup`:
    what integer `probabilities` stand for (Objects.statistics)."""
    report = progress or (lambda fraction, message: None)
    transform = gdal_geotransform(geotransform)
    report(0.0, "Labelling objects")
    objects = objects or Objects(binary)
    if probabilities is not None:
        report(0.2, "Object statistics")
    fields = objects.table(probabilities, lookup)
    fields["area_m2"] = objects.rows_weighted(row_pixel_areas(transform, objects.shape[0], srs))

    report(0.4, "Tracing polygons")
    traced = trace_objects(objects, transform, srs, lambda f: report(0.4 + 0.6 * f, "Tracing polygons"))
    return fields, [traced[label] for label in range(1, objects.count + 1)]
