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
import os
import re
from collections.abc import Callable

import numpy as np

from ...definitions import LAYERS, LONG_NAMES, PARQUET_FILES, PERCENT_NODATA, SUBSET_FILES, TILE_FILES
from ..files.atomic import AtomicFiles
from ..files.geotiff import read_probabilities_for_export, write_geotiff
from ..files.images import write_jpeg, write_png
from ..files.layers import DARTS_TILE
from ..files.tags import describe_run, inference_record, write_inference_json
from ..kernels.checks import check_same_shape, require_variables
from ..kernels.devices import to_host
from ..kernels.encodings import to_percent
from ..kernels.quicklook import quicklook_rgb, thumbnail_rgb
from .polygons import polygonize

logger = logging.getLogger(__name__)




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


def pair_subsets(probabilities, binarized, names=("SUBSET_PROBABILITIES", "SUBSET_BINARIZED")) -> dict:
    """{subset name: (probabilities file, binarized file)} of the ensemble subsets, as
    darts:exporttile pairs them: `probabilities` and `binarized` are (layer name, file) pairs;
    the names from the probabilities layers' names (subset_names, as prepareexport names them),
    each binarized raster found by the name after its last - (prepareexport writes
    <stem>-<subset>, DARTS binarized-<subset>). A subset without its binarized raster, or a
    binarized raster of no subset, is an error naming the parameters `names`."""
    probabilities_name, binarized_name = names
    subsets = subset_names(name for name, _ in probabilities)
    if binarized and not probabilities:
        raise ValueError(f"{binarized_name}: give the ensemble subsets' probabilities in {probabilities_name} too")
    found = {}
    for layer_name, path in binarized:
        key = layer_name.rsplit("-", 1)[-1]
        if key not in subsets:
            raise ValueError(f"{binarized_name}: {os.path.basename(path)} is of no ensemble subset: its name should "
                             f"end in -<subset>, one of {', '.join(subsets)}")
        if key in found:
            raise ValueError(f"{binarized_name}: {os.path.basename(found[key])} and {os.path.basename(path)} are both "
                             f"of ensemble subset '{key}'")
        found[key] = path
    missing = [name for name in subsets if name not in found]
    if missing:
        raise ValueError(f"{binarized_name}: no binarized raster of ensemble subset '{missing[0]}' (give 'Prepare "
                         f"export''s OUTPUT_SUBSET_BINARIZED: a file whose name ends in -{missing[0]})")
    return {name: (path, found[name]) for name, (_, path) in zip(subsets, probabilities)}


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


def tile_layout(parts: bool = False, tags=None):
    """The polygons' layout in a tile folder: upstream's (statistics in percent, Integer64
    min/max, geometry column `geom`); `parts`: one Polygon feature per 4-connected part."""
    return dataclasses.replace(DARTS_TILE, parts=parts, tags=dict(tags or {}))


def parquet_files(folder: str, subsets=()) -> tuple[dict, str]:
    """({kind: (GeoPackage kind, path)} of the GeoParquet twins to write, why not or "")."""
    from ..files.geoparquet import geoparquet_support

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
    check_same_shape(extent=extent, **{f"probabilities{suffix}": percent for suffix, (percent, _) in layers.items()},
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


# Memory per pixel of export_tile_files in memory (probabilities as float32 and percent,
# binarized, extent, labels, quicklook) and of each ensemble subset: above a memory limit,
# the caller asks for the block-wise path (`block`).
BYTES_PER_PIXEL = 16
SUBSET_BYTES_PER_PIXEL = 14


def export_bytes(subsets: int = 0) -> int:
    """Bytes per pixel export_tile_files needs in memory with `subsets` ensemble subsets."""
    return BYTES_PER_PIXEL + SUBSET_BYTES_PER_PIXEL * subsets


def export_sources(probabilities: str, binarized: str, extent: str, subsets=None) -> tuple:
    """(grid, {suffix: (probabilities file, its name, binarized file, its name)}) of the files
    export_tile_files reads ("" the tile's own, "-<subset>" each subset's, `subsets` being
    {name: (probabilities file, binarized file)}), every one checked to lie on the binarized
    raster's grid. Files are named as darts:exporttile's parameters in errors."""
    from ..files.grids import check_same_grid, grid_of

    subsets = dict(subsets or {})
    check_subsets(subsets)
    grid = grid_of(binarized, "BINARIZED")
    sources = {"": (probabilities, "PROBABILITIES", binarized, "BINARIZED")}
    for subset, (subset_probabilities, subset_binarized) in subsets.items():
        sources[f"-{subset}"] = (subset_probabilities, f"SUBSET_PROBABILITIES '{subset}'", subset_binarized,
                                 f"SUBSET_BINARIZED '{subset}'")
    checks = [("PROBABILITIES", probabilities), ("EXTENT", extent)]
    for suffix, (probabilities_path, probabilities_what, binarized_path, binarized_what) in sources.items():
        if suffix:
            checks += [(probabilities_what, probabilities_path), (binarized_what, binarized_path)]
    for name, path in checks:
        check_same_grid("BINARIZED", grid, name, grid_of(path, name))
    return grid, sources


def export_tile_files(probabilities: str, binarized: str, extent: str, folder: str, *, subsets=None,
                      scale: str = "auto", parts: bool = False, tags=None, block: int | None = None,
                      address: str | None = None, files: AtomicFiles | None = None,
                      progress: Callable[[float, str], None] | None = None) -> dict[str, str]:
    """export_tile from files: the probabilities (float 0..1 or DARTS' uint8 percent, read as
    `scale` says), the binarized objects and the extent (0/1) of a prepare_export run, and for
    each ensemble subset in `subsets` ({name: (probabilities file, binarized file)}) its two
    files, all on one grid. The same files, written in memory (`block` None) or for rasters
    larger than memory block by block (`block` pixels square; `address`: a dask.distributed
    scheduler to compute on), with the same contents. In memory the files appear together when
    the export is done; block by block they are reserved in `files` (an AtomicFiles the caller
    commits; without one they are committed here). `tags`: as export_tile's (default: an
    "exporttile" step, the tile id the folder's name). Returns {kind: path} as export_tile.
    `progress(fraction, message)` may raise to cancel: nothing is left behind."""
    report = progress or (lambda fraction, message: None)
    grid, sources = export_sources(probabilities, binarized, extent, subsets)
    inputs = [extent] + [path for source in sources.values() for path in source[0::2]]
    if tags is None:
        tags = describe_run("exporttile", {}, tile_id=os.path.basename(os.path.abspath(folder)))
    if block:
        if files is not None:
            files.protect(inputs)
            return _export_in_blocks(sources, extent, grid, folder, scale, parts, tags, block, address, files, report)
        with AtomicFiles(inputs) as own:
            return _export_in_blocks(sources, extent, grid, folder, scale, parts, tags, block, address, own, report)
    from ..files.geotiff import read_band
    from ..kernels.encodings import decode_binary

    report(0.0, "Reading the rasters")
    tile = {"extent": decode_binary(*read_band(extent, "EXTENT"), "EXTENT")}
    for suffix, (probabilities_path, probabilities_what, binarized_path, binarized_what) in sources.items():
        tile["probabilities" + suffix] = read_probabilities_for_export(probabilities_path, probabilities_what, scale)
        tile["binarized_segmentation" + suffix] = decode_binary(*read_band(binarized_path, binarized_what),
                                                                binarized_what)
    report(0.1, "Reading the rasters")
    return export_tile(tile, folder, grid.geotransform, grid.crs, inputs=inputs, tags=tags, parts=parts,
                       ensemble_subsets=list(subsets or {}),
                       progress=lambda fraction, message: report(0.1 + 0.9 * fraction, message))



def _export_in_blocks(sources, extent_path, grid, folder, scale, parts, tags, block, address, files, report):
    """export_tile_files block by block: the rasters stored window by window, the polygons
    traced across blocks, the quick looks from samples; everything reserved in `files`."""
    import dask
    import dask.array as da

    from ..files.geotiff import GeoTiffWindows
    from ..files.images import write_image_locked
    from ..kernels.quicklook import quicklook_of_samples, quicklook_step, thumbnail_of_samples
    from ..lazy.blockwise import compute, read_binary_lazy, read_probabilities_for_export_lazy, scheduler, store
    from ..lazy.chunked_polygons import polygonize_lazy

    subsets = [suffix[1:] for suffix in sources if suffix]
    record = inference_record(tags)  # before writing anything: a bad tag is an error
    layout = tile_layout(parts, tags)
    paths = tile_files(folder, subsets)
    names = layer_names(subsets)
    extent = read_binary_lazy(extent_path, "EXTENT", block).astype(np.uint8)
    layers = {}
    for suffix, (probabilities_path, probabilities_what, binarized_path, binarized_what) in sources.items():
        probabilities = read_probabilities_for_export_lazy(probabilities_path, probabilities_what, block, scale)
        percent = probabilities.map_blocks(to_percent, dtype=np.uint8, meta=np.zeros((0, 0), np.uint8))
        layers[suffix] = (da.where(extent == 0, PERCENT_NODATA, percent).astype(np.uint8),
                          read_binary_lazy(binarized_path, binarized_what, block).astype(np.uint8))
    percent, binarized = layers[""]
    # As export_tile in memory: the tile files always carry a geotransform (GDAL's default too).
    rasters = {paths["extent"]: (extent, None, LONG_NAMES["extent"])}
    for suffix, (values, binary) in layers.items():
        rasters.update({paths["probabilities" + suffix]: (values, PERCENT_NODATA, LONG_NAMES["probabilities"]),
                        paths["binarized" + suffix]: (binary, None, LONG_NAMES["binarized"])})
    targets = {path: GeoTiffWindows(files.reserve(path), array.shape, array.dtype, grid.geotransform, grid.crs, nodata,
                                    "LZW", tags, description)
               for path, (array, nodata, description) in rasters.items()}

    step = quicklook_step(percent.shape)
    height, width = percent.shape
    padded = da.pad(binarized != 0, ((0, -height % step), (0, -width % step)), constant_values=False)
    cells = da.coarsen(np.any, padded.rechunk(step * max(1, block // step)), {0: step, 1: step})
    samples = (percent[::step, ::step], extent[::step, ::step], cells)
    quicklook = dask.delayed(quicklook_of_samples)(*samples)
    thumbnail = dask.delayed(thumbnail_of_samples)(*samples)
    geopackages = {kind: files.reserve(paths[kind]) for kind in names}
    polygons = [("extent_polygons", extent, percent)] + [("segments" + suffix, binary, values)
                                                        for suffix, (values, binary) in layers.items()]
    twins, why = parquet_files(folder, subsets)
    if why:
        logger.warning("%s skipped: %s", ", ".join(parquet_names(subsets)), why)
    with scheduler(address) as (client, locks):
        if client is not None:
            report(0.0, f"Computing on the dask cluster at {address}")
        images = {kind: files.reserve(paths[kind]) for kind in ("thumbnail", "quicklook")}
        compute(store({path: array for path, (array, _, _) in rasters.items()}, targets, locks),
                *[polygonize_lazy(source, grid.geotransform, grid.crs, geopackages[kind], names[kind], values,
                                  locks(geopackages[kind]), layout) for kind, source, values in polygons],
                *[dask.delayed(write_image_locked)(kind, path, samples_image, tags, locks(path))
                  for (kind, path), samples_image in zip(images.items(), (thumbnail, quicklook))],
                client=client, progress=lambda fraction, message: report(0.95 * fraction, message),
                message="Processing blocks")
    report(0.95, "Writing the GeoParquet twins and darts_inference.json")
    write_parquet_twins(twins, geopackages, files.reserve, names)
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
    from ..files.geoparquet import write_geoparquet

    layers = layers or LAYERS
    for source, path in twins.values():
        write_geoparquet(geopackages[source], layers[source], reserve(path))
