"""A DARTS-compatible tile folder from a `prepare_export` result (upstream's export
conventions, semantics.md): probabilities.tif, binarized.tif, prediction_segments.gpkg,
prediction_extent.gpkg (and their GeoParquet twins where GeoParquet can be written),
thumbnail.jpg and darts_inference.json as DARTS' exporter names them, per ensemble subset
probabilities-{subset}.tif, binarized-{subset}.tif and prediction_segments-{subset}.gpkg,
and two files of the plugin's own that DARTS does not write: extent.tif and quicklook.png.
Each file says how it was made (metadata.py)."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Callable

import numpy as np

from .files import AtomicFiles, check_written, gdal_writing, osgeo, write_geotiff
from ._backend import to_host
from .api import check_same_grid, require_variables
from .metadata import LONG_NAMES, comment_of, describe_run, inference_record, write_inference_json
from .vectorize import DARTS_TILE, polygonize

logger = logging.getLogger(__name__)

PERCENT_NODATA = 255
TILE_FILES = {
    "probabilities": "probabilities.tif",
    "binarized": "binarized.tif",
    "extent": "extent.tif",  # the plugin's own: DARTS writes the extent as polygons only
    "segments": "prediction_segments.gpkg",
    "extent_polygons": "prediction_extent.gpkg",
    "thumbnail": "thumbnail.jpg",
    "inference": "darts_inference.json",
    "quicklook": "quicklook.png",  # the plugin's own
}
PARQUET_FILES = {"segments_parquet": ("segments", "prediction_segments.parquet"),
                 "extent_parquet": ("extent_polygons", "prediction_extent.parquet")}
LAYERS = {"segments": "prediction_segments", "extent_polygons": "prediction_extent"}
# The files DARTS writes per ensemble subset (model), `{}` its name; their kinds are
# "<kind>-<subset>" in the mappings of export_tile and tile_files.
SUBSET_FILES = {"probabilities": "probabilities-{}.tif", "binarized": "binarized-{}.tif",
                "segments": "prediction_segments-{}.gpkg"}
OBJECT_RGB = (215, 48, 31)
OUTSIDE_RGB = (20, 30, 90)
EXTENT_LINE_RGB = (0, 200, 255)
JPEG_QUALITY = 90


def subset_name(layer_name: str) -> str:
    """The name of an ensemble subset in file and variable names, from its probabilities
    layer's name: DARTS' own `probabilities-{subset}` gives `{subset}`; characters other than
    letters, digits and _ become _ (so a name never holds the - that separates it)."""
    name = layer_name[len("probabilities-"):] if layer_name.startswith("probabilities-") else layer_name
    return re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "subset"


def subset_names(layer_names) -> list[str]:
    """subset_name of each layer, in order; a name taken already gets a _ appended."""
    names = []
    for layer_name in layer_names:
        name = subset_name(layer_name)
        while name in names:
            name += "_"
        names.append(name)
    return names


def tile_files(folder: str, subsets=()) -> dict[str, str]:
    """{kind: path} of the files export_tile writes into `folder` (GeoParquet twins aside,
    see parquet_files), those of each ensemble subset as "<kind>-<subset>"."""
    paths = {kind: os.path.join(folder, name) for kind, name in TILE_FILES.items()}
    for subset in subsets:
        paths.update({f"{kind}-{subset}": os.path.join(folder, name.format(subset))
                      for kind, name in SUBSET_FILES.items()})
    return paths


def layer_names(subsets=()) -> dict[str, str]:
    """{kind: layer name} of the tile's GeoPackages (DARTS names each layer as its file)."""
    return {**LAYERS, **{f"segments-{subset}": f"{LAYERS['segments']}-{subset}" for subset in subsets}}


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
    rgb = _overview(percent, extent)
    rgb[:, objects[: rgb.shape[1], : rgb.shape[2]]] = np.array(OBJECT_RGB)[:, None]
    return rgb


def thumbnail_rgb(percent, extent, binarized, max_size: int = 512) -> np.ndarray:
    """(3, h, w) uint8 thumbnail: the quicklook's background (probabilities grey, outside the
    extent dark blue) with the objects' outlines in red and the extent's border in light
    blue, as DARTS' thumbnail draws objects and extent as outlines (over the optical image,
    which an export from probabilities does not have). Sampled as quicklook_rgb, then each
    pixel drawn 2 x 2 (up to 1024 pixels a side)."""
    step = quicklook_step(percent.shape, max_size)
    return thumbnail_of_samples(percent[::step, ::step], np.asarray(extent)[::step, ::step],
                                _block_any(np.asarray(binarized) != 0, step))


def thumbnail_of_samples(percent, extent, objects) -> np.ndarray:
    """The thumbnail from the quicklook's samples (quicklook_of_samples): the same from a whole
    raster or from blocks."""
    rgb = _overview(percent, extent)
    objects = objects[: rgb.shape[1], : rgb.shape[2]]
    rgb[:, _border(extent != 0, edge_inside=True)] = np.array(EXTENT_LINE_RGB)[:, None]
    rgb[:, _border(objects, edge_inside=False)] = np.array(OBJECT_RGB)[:, None]
    return rgb.repeat(2, axis=1).repeat(2, axis=2)  # lines 2 pixels wide: JPEG halves colour resolution


def _overview(percent, extent) -> np.ndarray:
    """The probabilities in grey, darkened to blue outside the extent."""
    grey = percent.astype(np.float32)
    grey = np.where(grey == PERCENT_NODATA, 0, grey * 2.55).astype(np.uint8)
    rgb = np.stack([grey, grey, grey])
    outside = extent == 0
    rgb[:, outside] = (rgb[:, outside] * 0.4 + np.array(OUTSIDE_RGB)[:, None] * 0.6).astype(np.uint8)
    return rgb


def _border(mask, edge_inside: bool) -> np.ndarray:
    """The pixels of `mask` with a 4-neighbour outside it; beyond the image's edge counts as
    inside (`edge_inside`: an extent that fills the tile has no border) or as outside (an
    object cut by the edge is still closed)."""
    padded = np.pad(mask, 1, constant_values=edge_inside)
    surrounded = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~surrounded


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


def write_jpeg(path: str, rgb: np.ndarray, tags=None) -> None:
    """A JPEG of the (3, h, w) image; `tags` go into its comment marker (metadata.comment_of),
    where GDAL shows them as the COMMENT item, as the JPEG driver keeps no other metadata."""
    gdal, _, _ = osgeo()
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    options = [f"QUALITY={JPEG_QUALITY}"] + ([f"COMMENT={comment_of(tags)}"] if tags else [])
    with gdal_writing(path):
        gdal.GetDriverByName("JPEG").CreateCopy(path, memory, options=options)
    check_written(path)  # lossy: read back whole, not compared


def write_image_locked(kind: str, path: str, rgb: np.ndarray, tags, lock) -> None:
    """The thumbnail (JPEG) or quicklook (PNG) of the block-wise export, written taking its
    turn with the other writes (GDAL error capture is process-wide). In the core, so that a
    dask cluster's workers, which get only the core, can run it."""
    with lock:
        (write_jpeg if kind == "thumbnail" else write_png)(path, rgb, tags)


def tile_layout(parts: bool = False, tags=None):
    """The polygons' layout in a tile folder: upstream's (statistics in percent, Integer64
    min/max, geometry column `geom`); `parts`: one Polygon feature per 4-connected part."""
    return dataclasses.replace(DARTS_TILE, parts=parts, tags=dict(tags or {}))


def parquet_files(folder: str, subsets=()) -> tuple[dict, str]:
    """({kind: (GeoPackage kind, path)} of the GeoParquet twins to write, why not or "")."""
    from .geoparquet import geoparquet_support

    writer, why = geoparquet_support()
    if writer is None:
        return {}, why
    twins = {kind: (source, os.path.join(folder, name)) for kind, (source, name) in PARQUET_FILES.items()}
    for subset in subsets:
        twins[f"segments_parquet-{subset}"] = (f"segments-{subset}",
                                               os.path.join(folder, f"{LAYERS['segments']}-{subset}.parquet"))
    return twins, ""


def parquet_names(subsets=()) -> list[str]:
    """The file names of the GeoParquet twins DARTS writes (and its completeness check expects)."""
    return [name for _, name in PARQUET_FILES.values()] + [f"{LAYERS['segments']}-{subset}.parquet"
                                                           for subset in subsets]


def export_tile(tile, folder: str, geotransform, crs, *, inputs=(), progress: Callable[[float, str], None] | None = None,
                quicklook_size: int = 512, tags=None, parts: bool = False, ensemble_subsets=()) -> dict[str, str]:
    """Write the DARTS tile files of `tile` (a prepare_export result: `probabilities`, float
    0..1 with NaN or uint8 percent, `binarized_segmentation`, `extent`; for each name in
    `ensemble_subsets` (see subset_name) also `probabilities-{name}` and
    `binarized_segmentation-{name}`) into `folder`, named as DARTS' exporter names them.

    Probabilities outside the extent are written as nodata (a subset's too: the extent is
    the tile's). The GeoPackages' statistics are upstream's (of the percent values; the
    extent's polygons carry them too); `parts` writes a feature per 4-connected part as
    upstream does. GeoParquet twins of the GeoPackages are written where pyarrow or GDAL's
    Parquet driver is found, else skipped with a logged warning. Every file carries `tags`
    (default: metadata.describe_run of an "exporttile" step, the tile id being the folder's
    name, as DARTS names tile folders), the rasters upstream's band descriptions, and
    darts_inference.json holds them as DARTS' record (metadata.inference_record). All files
    appear together or none does; files listed in `inputs` are never overwritten. Returns
    {kind: path} of the files written (tile_files, parquet_files).
    """
    report = progress or (lambda fraction, message: None)
    subsets = check_subsets(ensemble_subsets)
    require_variables(tile, ("probabilities", "binarized_segmentation", "extent",
                             *(f"{variable}-{subset}" for subset in subsets
                               for variable in ("probabilities", "binarized_segmentation"))))
    extent = to_host(tile["extent"]).astype(np.uint8)
    layers = {"": (to_percent(tile["probabilities"]), to_host(tile["binarized_segmentation"]).astype(np.uint8))}
    for subset in subsets:
        layers[f"-{subset}"] = (to_percent(tile[f"probabilities-{subset}"]),
                                to_host(tile[f"binarized_segmentation-{subset}"]).astype(np.uint8))
    check_same_grid(extent=extent, **{f"probabilities{suffix}": percent for suffix, (percent, _) in layers.items()},
                    **{f"binarized_segmentation{suffix}": binary for suffix, (_, binary) in layers.items()})
    for percent, _ in layers.values():
        percent[extent == 0] = PERCENT_NODATA
    percent, binarized = layers[""]
    paths = tile_files(folder, subsets)
    if tags is None:
        tags = describe_run("exporttile", {}, tile_id=os.path.basename(os.path.abspath(folder)))
    record = inference_record(tags)  # before writing anything: a bad tag is an error
    layout = tile_layout(parts, tags)
    names = layer_names(subsets)
    twins, why = parquet_files(folder, subsets)
    if why:
        logger.warning("%s skipped: %s", ", ".join(parquet_names(subsets)), why)

    with AtomicFiles(inputs) as files:
        report(0.0, "Writing the rasters")
        rasters = [("extent", extent, None, "extent")]
        for suffix, (values, binary) in layers.items():
            rasters += [("probabilities" + suffix, values, PERCENT_NODATA, "probabilities"),
                        ("binarized" + suffix, binary, None, "binarized")]
        for kind, array, nodata, description in rasters:
            write_geotiff(files.reserve(paths[kind]), array, geotransform, crs, nodata, "LZW", tags,
                          LONG_NAMES[description])
        written = {kind: files.reserve(paths[kind]) for kind in names}
        sources = [("extent_polygons", extent, percent)] + [("segments" + suffix, binary, values)
                                                          for suffix, (values, binary) in layers.items()]
        for index, (kind, source, values) in enumerate(sources):
            share = 0.85 / len(sources)
            report(0.1 + share * index, f"Polygonizing {os.path.basename(paths[kind])}")
            polygonize(source, geotransform, crs, written[kind], names[kind], values,
                       lambda f, message, start=0.1 + share * index, share=share: report(start + share * f, message),
                       layout=layout)
        write_parquet_twins(twins, written, files.reserve, names)
        report(0.95, "Writing the thumbnail, quicklook and darts_inference.json")
        write_jpeg(files.reserve(paths["thumbnail"]), thumbnail_rgb(percent, extent, binarized, quicklook_size), tags)
        write_png(files.reserve(paths["quicklook"]), quicklook_rgb(percent, extent, binarized, quicklook_size), tags)
        write_inference_json(files.reserve(paths["inference"]), record)
    report(1.0, "Done")
    paths.update({kind: path for kind, (_, path) in twins.items()})
    return paths


def check_subsets(subsets) -> list[str]:
    """The ensemble subset names as given, each a name subset_name keeps, none twice."""
    subsets = list(subsets)
    for subset in subsets:
        if not isinstance(subset, str) or subset_name(subset) != subset:
            raise ValueError(f"ensemble subset name {subset!r}: use letters, digits and _ only (e.g. "
                             f"{subset_name(str(subset))!r})")
    twice = sorted({subset for subset in subsets if subsets.count(subset) > 1})
    if twice:
        raise ValueError(f"ensemble subset {twice[0]!r} is given twice")
    return subsets


def write_parquet_twins(twins: dict, geopackages: dict, reserve, layers=None) -> None:
    """Write each GeoParquet twin (parquet_files) from its GeoPackage as written (`geopackages`:
    {kind: file}; `layers`: {kind: layer name}, layer_names); `reserve(path)` gives the file
    to write each to."""
    from .geoparquet import write_geoparquet

    layers = layers or LAYERS
    for source, path in twins.values():
        write_geoparquet(geopackages[source], layers[source], reserve(path))
