"""A DARTS-compatible tile folder from a `prepare_export` result (upstream's export
conventions, semantics.md): probabilities.tif, binarized.tif, extent.tif,
prediction_segments.gpkg, prediction_extent.gpkg and a quicklook PNG."""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from .files import AtomicFiles, gdal_writing, osgeo, write_geotiff
from ._backend import to_host
from .api import check_same_grid, require_variables
from .vectorize import polygonize

PERCENT_NODATA = 255
TILE_FILES = {
    "probabilities": "probabilities.tif",
    "binarized": "binarized.tif",
    "extent": "extent.tif",
    "segments": "prediction_segments.gpkg",
    "extent_polygons": "prediction_extent.gpkg",
    "quicklook": "quicklook.png",
}
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


def write_png(path: str, rgb: np.ndarray) -> None:
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    with gdal_writing(path):
        gdal.GetDriverByName("PNG").CreateCopy(path, memory)  # the copy is closed right away


def export_tile(tile, folder: str, geotransform, crs, *, inputs=(), progress: Callable[[float, str], None] | None = None,
                quicklook_size: int = 512) -> dict[str, str]:
    """Write the DARTS tile files of `tile` (a prepare_export result: `probabilities`, float
    0..1 with NaN or uint8 percent, `binarized_segmentation`, `extent`) into `folder`.

    Probabilities outside the extent are written as nodata. All files appear together or
    none does; files listed in `inputs` are never overwritten. Returns {kind: path}.
    """
    report = progress or (lambda fraction, message: None)
    require_variables(tile, ("probabilities", "binarized_segmentation", "extent"))
    extent = to_host(tile["extent"]).astype(np.uint8)
    binarized = to_host(tile["binarized_segmentation"]).astype(np.uint8)
    percent = to_percent(tile["probabilities"])
    check_same_grid(probabilities=percent, binarized_segmentation=binarized, extent=extent)
    percent[extent == 0] = PERCENT_NODATA
    paths = {kind: os.path.join(folder, name) for kind, name in TILE_FILES.items()}
    # Object statistics from the full-precision probabilities when there are any.
    raw = to_host(tile["probabilities"])
    values = raw if raw.dtype.kind == "f" else np.where(percent == PERCENT_NODATA, np.nan, percent / np.float32(100))

    with AtomicFiles(inputs) as files:
        report(0.0, "Writing probabilities.tif, binarized.tif, extent.tif")
        write_geotiff(files.reserve(paths["probabilities"]), percent, geotransform, crs, PERCENT_NODATA, "LZW")
        write_geotiff(files.reserve(paths["binarized"]), binarized, geotransform, crs, None, "LZW")
        write_geotiff(files.reserve(paths["extent"]), extent, geotransform, crs, None, "LZW")
        report(0.1, "Polygonizing the objects")
        polygonize(binarized, geotransform, crs, files.reserve(paths["segments"]), "prediction_segments", values,
                   lambda f, message: report(0.1 + 0.5 * f, message))
        report(0.6, "Polygonizing the extent")
        polygonize(extent, geotransform, crs, files.reserve(paths["extent_polygons"]), "prediction_extent", None,
                   lambda f, message: report(0.6 + 0.35 * f, message))
        report(0.95, "Writing the quicklook")
        write_png(files.reserve(paths["quicklook"]), quicklook_rgb(percent, extent, binarized, quicklook_size))
    report(1.0, "Done")
    return paths
