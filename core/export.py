"""A DARTS-compatible tile folder from a `prepare_export` result (upstream's export
conventions, semantics.md): probabilities.tif, binarized.tif, extent.tif,
prediction_segments.gpkg, prediction_extent.gpkg (and their GeoParquet twins where GeoParquet
can be written) and a quicklook PNG, each saying how it was made (metadata.py)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Callable

import numpy as np

from .files import AtomicFiles, check_written, gdal_writing, osgeo, write_geotiff
from ._backend import to_host
from .api import check_same_grid, require_variables
from .metadata import LONG_NAMES, describe_run
from .vectorize import DARTS_TILE, polygonize

logger = logging.getLogger(__name__)

PERCENT_NODATA = 255
TILE_FILES = {
    "probabilities": "probabilities.tif",
    "binarized": "binarized.tif",
    "extent": "extent.tif",
    "segments": "prediction_segments.gpkg",
    "extent_polygons": "prediction_extent.gpkg",
    "quicklook": "quicklook.png",
}
PARQUET_FILES = {"segments_parquet": ("segments", "prediction_segments.parquet"),
                 "extent_parquet": ("extent_polygons", "prediction_extent.parquet")}
LAYERS = {"segments": "prediction_segments", "extent_polygons": "prediction_extent"}
OBJECT_RGB = (215, 48, 31)
OUTSIDE_RGB = (20, 30, 90)


def to_percent(probabilities) -> np.ndarray:
    """DARTS' uint8 probabilities: int(p * 100) truncated (computed in the input's float type,
    as upstream does), NaN -> 255. A uint8 array is taken as percent already and kept, so it
    must hold 0..100 or 255: anything else would be written as an impossible percentage."""
    probabilities = to_host(probabilities)
    if probabilities.dtype == np.uint8:
        odd = (probabilities > 100) & (probabilities != PERCENT_NODATA)
        if odd.any():
            raise ValueError(f"uint8 probabilities are DARTS percent 0..100 (nodata {PERCENT_NODATA}), but hold "
                             f"{int(probabilities[odd][0])}")
        return probabilities.copy()
    if probabilities.dtype.kind != "f":
        raise TypeError(f"probabilities must be float 0..1 or uint8 percent, got dtype {probabilities.dtype}")
    missing = np.isnan(probabilities)
    percent = np.where(missing, 0, probabilities * probabilities.dtype.type(100))
    if percent.min() < 0 or percent.max() > 100:
        raise ValueError("probabilities must lie in [0, 1] (NaN = no prediction)")
    percent = percent.astype(np.uint8)
    percent[missing] = PERCENT_NODATA
    return percent


def quicklook_step(shape, max_size: int = 512) -> int:
    """Every how many pixels the quicklook samples, so that it is at most `max_size` a side."""
    return max(1, math.ceil(max(shape) / max_size))


def quicklook_rgb(percent, extent, binarized, max_size: int = 512) -> np.ndarray:
    """(3, h, w) uint8 overview: probabilities in grey, outside the extent dark blue, objects
    red. Downsampled to at most `max_size` pixels a side; an object shows if any of its
    pixels falls in a quicklook pixel, so small slumps stay visible."""
    step = quicklook_step(percent.shape, max_size)
    return quicklook_of_samples(percent[::step, ::step], np.asarray(extent)[::step, ::step],
                                _block_any(np.asarray(binarized) != 0, step))


def quicklook_of_samples(percent, extent, objects) -> np.ndarray:
    """The quicklook from every step-th pixel of the percent and extent rasters and whether any
    object pixel lies in each step x step cell (the same from a whole raster or from blocks)."""
    grey = percent.astype(np.float32)
    grey = np.where(grey == PERCENT_NODATA, 0, grey * 2.55).astype(np.uint8)
    rgb = np.stack([grey, grey, grey])
    outside = extent == 0
    rgb[:, outside] = (rgb[:, outside] * 0.4 + np.array(OUTSIDE_RGB)[:, None] * 0.6).astype(np.uint8)
    objects = objects[: rgb.shape[1], : rgb.shape[2]]
    rgb[:, objects] = np.array(OBJECT_RGB)[:, None]
    return rgb


def _block_any(image, step: int) -> np.ndarray:
    """Whether any pixel of each step x step cell is set (cells at the edges may be smaller)."""
    if step == 1:
        return image
    height, width = image.shape
    padded = np.zeros((math.ceil(height / step) * step, math.ceil(width / step) * step), dtype=bool)
    padded[:height, :width] = image
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))


def write_png(path: str, rgb: np.ndarray, tags=None) -> None:
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    if tags:
        memory.SetMetadata(dict(tags))
    with gdal_writing(path):  # the tags as PNG text chunks, not an .aux.xml beside the file
        gdal.GetDriverByName("PNG").CreateCopy(path, memory, options=["WRITE_METADATA_AS_TEXT=YES"])
    check_written(path, rgb)


def tile_layout(parts: bool = False, tags=None):
    """The polygons' layout in a tile folder: upstream's (statistics in percent, Integer64
    min/max, geometry column `geom`); `parts`: one Polygon feature per 4-connected part."""
    return dataclasses.replace(DARTS_TILE, parts=parts, tags=dict(tags or {}))


def parquet_files(folder: str) -> tuple[dict, str]:
    """({kind: (GeoPackage kind, path)} of the GeoParquet twins to write, why not or "")."""
    from .geoparquet import geoparquet_support

    writer, why = geoparquet_support()
    if writer is None:
        return {}, why
    return {kind: (source, os.path.join(folder, name)) for kind, (source, name) in PARQUET_FILES.items()}, ""


def export_tile(tile, folder: str, geotransform, crs, *, inputs=(), progress: Callable[[float, str], None] | None = None,
                quicklook_size: int = 512, tags=None, parts: bool = False) -> dict[str, str]:
    """Write the DARTS tile files of `tile` (a prepare_export result: `probabilities`, float
    0..1 with NaN or uint8 percent, `binarized_segmentation`, `extent`) into `folder`.

    Probabilities outside the extent are written as nodata. The GeoPackages' statistics are
    upstream's (of the percent values; the extent's polygons carry them too); `parts` writes
    a feature per 4-connected part as upstream does. GeoParquet twins of the GeoPackages are
    written where pyarrow or GDAL's Parquet driver is found, else skipped with a logged
    warning. Every file carries `tags` (default: metadata.describe_run of an "exporttile"
    step, the tile id being the folder's name, as DARTS names tile folders) and the rasters
    upstream's band descriptions. All files appear together or none does; files listed in
    `inputs` are never overwritten. Returns {kind: path} of the files written.
    """
    report = progress or (lambda fraction, message: None)
    require_variables(tile, ("probabilities", "binarized_segmentation", "extent"))
    extent = to_host(tile["extent"]).astype(np.uint8)
    binarized = to_host(tile["binarized_segmentation"]).astype(np.uint8)
    percent = to_percent(tile["probabilities"])
    check_same_grid(probabilities=percent, binarized_segmentation=binarized, extent=extent)
    percent[extent == 0] = PERCENT_NODATA
    paths = {kind: os.path.join(folder, name) for kind, name in TILE_FILES.items()}
    if tags is None:
        tags = describe_run("exporttile", {}, tile_id=os.path.basename(os.path.abspath(folder)))
    layout = tile_layout(parts, tags)
    twins, why = parquet_files(folder)
    if why:
        logger.warning("prediction_segments.parquet and prediction_extent.parquet skipped: %s", why)

    with AtomicFiles(inputs) as files:
        report(0.0, "Writing probabilities.tif, binarized.tif, extent.tif")
        for kind, array, nodata in (("probabilities", percent, PERCENT_NODATA), ("binarized", binarized, None),
                                    ("extent", extent, None)):
            write_geotiff(files.reserve(paths[kind]), array, geotransform, crs, nodata, "LZW", tags, LONG_NAMES[kind])
        report(0.1, "Polygonizing the objects")
        written = {kind: files.reserve(paths[kind]) for kind in LAYERS}
        polygonize(binarized, geotransform, crs, written["segments"], LAYERS["segments"], percent,
                   lambda f, message: report(0.1 + 0.45 * f, message), layout=layout)
        report(0.55, "Polygonizing the extent")
        polygonize(extent, geotransform, crs, written["extent_polygons"], LAYERS["extent_polygons"], percent,
                   lambda f, message: report(0.55 + 0.35 * f, message), layout=layout)
        write_parquet_twins(twins, written, files.reserve)
        report(0.95, "Writing the quicklook")
        write_png(files.reserve(paths["quicklook"]), quicklook_rgb(percent, extent, binarized, quicklook_size), tags)
    report(1.0, "Done")
    paths.update({kind: path for kind, (_, path) in twins.items()})
    return paths


def write_parquet_twins(twins: dict, geopackages: dict, reserve) -> None:
    """Write each GeoParquet twin (parquet_files) from its GeoPackage as written (`geopackages`:
    {kind: file}); `reserve(path)` gives the file to write each to."""
    from .geoparquet import write_geoparquet

    for source, path in twins.values():
        write_geoparquet(geopackages[source], LAYERS[source], reserve(path))
