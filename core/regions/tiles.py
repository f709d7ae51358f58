"""One tile, alone: finding tile folders, reading a tile as processtiles reads it, and
postprocessing it into polygons in the target CRS (`process_tile`).

A tile is a folder holding `probabilities.tif` (or an ensemble member's
`probabilities-{subset}.tif`). With `quality_data_mask.tif` the whole postprocessing runs, as
`prepare_export`. Otherwise the tile was postprocessed already, and its valid extent is used as
it is (no second erosion or edge band): `extent.tif` (this plugin's tile outputs), else DARTS'
`prediction_extent.gpkg` (or `.parquet`) burnt onto the tile's grid at pixel centres, else the
probabilities' valid pixels. The objects are binarized again from the probabilities inside that
extent with the run's settings, or taken from the exported `binarized.tif` as they are.
Folders without probabilities (DARTS' `_metadata_*` folders, ...) are passed over. Each tile's
date comes from its id (darts_ids.py). Each tile is processed alone (in this process, in worker
processes or on dask.distributed workers: workers.py), so memory holds a few tiles whatever
their number; merge.py then makes one map of them (process_tiles.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ...definitions import (
    BINARIZATIONS,
    GROUPINGS,
    LONG_NAMES,
    PARQUET_FILES,
    PERCENT_NODATA,
    TILE_FILES,
    Progress,
)
from ...definitions import QUALITY_FILE as QUALITY
from ..files.atomic import SIDE_FILES
from ..files.gdal import osgeo, spatial_reference
from ..files.geotiff import write_geotiff
from ..kernels.checks import check_choice
from ..products.settings import PostprocessSettings

from .darts_ids import TileDate, tile_date

PROBABILITIES, BINARIZED, EXTENT, INFERENCE = (TILE_FILES[kind] for kind in ("probabilities", "binarized", "extent",
                                                                             "inference"))
EXTENT_POLYGONS = (TILE_FILES["extent_polygons"], PARQUET_FILES["extent_parquet"][1])  # DARTS' extent, in this order
DEPTH_BLOCK = 4  # depth inside the extent is measured in blocks of 4 x 4 pixels (cheap; exact to 4 px)
TILE_OUTPUTS = (BINARIZED, EXTENT, TILE_FILES["segments"])


@dataclass(frozen=True)
class TileSource:
    """A tile folder: `quality` (quality_data_mask.tif), or else the extent as given: `extent`
    (extent.tif) or `extent_polygons` (DARTS' prediction_extent), or neither (the
    probabilities' valid pixels). `binarized` is the exported binarized raster, if any."""

    tile_id: str
    folder: str
    probabilities: str
    quality: str | None = None
    extent: str | None = None
    extent_polygons: str | None = None
    binarized: str | None = None

    @property
    def extent_as_given(self) -> str:
        """How the tile's valid extent is found, for the log, the report and the tags."""
        if self.quality:
            return ""
        if self.extent or self.extent_polygons:
            return f"{os.path.basename(self.extent or self.extent_polygons)} as given"
        return f"valid pixels of {os.path.basename(self.probabilities)} (no extent in the folder)"

    def date(self, tags: dict | None = None) -> TileDate:
        """When the tile was taken, by DARTS' ids (darts_ids.tile_date): darts_inference.json's
        DARTS_tileid, the probabilities' DARTS_tileid tag (`tags`: theirs, when read already),
        the folder's name."""
        from ..files.tags import read_tags

        tags = read_tags(self.probabilities) if tags is None else tags
        return tile_date([(INFERENCE, read_inference(self.folder, self.tile_id).get("DARTS_tileid")),
                          (f"{os.path.basename(self.probabilities)}'s DARTS_tileid", tags.get("DARTS_tileid")),
                          ("the folder name", os.path.basename(self.folder))])

    @property
    def inputs(self) -> list[str]:
        """The tile's files that outputs must never replace."""
        return [path for path in (self.probabilities, self.quality, self.extent, self.extent_polygons, self.binarized)
                if path]


@dataclass(frozen=True)
class Skipped:
    tile_id: str
    reason: str


@dataclass(frozen=True)
class TileSettings(PostprocessSettings):
    """The postprocessing parameters (PostprocessSettings, named and defaulted as
    darts:prepareexport's; `exclude` must be polygons here), and how tiles are read and merged."""

    subset: str | None = None  # an ensemble member: probabilities-{subset}.tif instead of probabilities.tif
    binarization: str = "recompute"  # BINARIZATIONS: from the probabilities, or the exported binarized.tif
    group_by: str = "year"  # darts_ids.GROUPINGS: tiles of one group are merged, groups kept apart

    def checked(self) -> TileSettings:
        """The same settings, checked once before any tile is read (a bad value is an error of
        the run, not of every tile)."""
        super().checked()
        check_choice("binarization", self.binarization, BINARIZATIONS)
        check_choice("group_by", self.group_by, GROUPINGS)
        if self.subset is not None and (not self.subset or "/" in self.subset or os.sep in self.subset):
            raise ValueError(f"subset must be an ensemble member's name (as in probabilities-<name>.tif), "
                             f"got {self.subset!r}")
        if self.exclude is not None:
            from ..files.exclusion import is_vector, open_polygons

            if os.path.exists(self.exclude[0]) and not is_vector(self.exclude[0]):
                raise ValueError(f"the exclusion mask {self.exclude[0]!r} must be polygons: tiles lie on different "
                                 f"grids, and a raster mask fits one grid only")
            with open_polygons(*self.exclude):  # a missing file or layer: an error before any tile
                pass
        return self

    def on_record(self) -> dict:
        """The settings as they go into the output's metadata."""
        return {"threshold": self.threshold, "mask_erosion_size": self.mask_erosion_size,
                "edge_erosion_size": self.edge_band,
                "min_object_size": self.min_object_size, "quality_level": self.quality_level,
                "boundary": self.boundary, "size_connectivity": self.size_connectivity,
                "probability_scale": self.scale, "statistics_scale": self.statistics,
                "exclusion_mask": self.exclude[0] if self.exclude else None, "subset": self.subset,
                "binarization": self.binarization, "group_by": self.group_by,
                "max_excluded_share": self.max_excluded_share}

    @property
    def probabilities_file(self) -> str:
        return PROBABILITIES if self.subset is None else f"probabilities-{self.subset}.tif"

    @property
    def binarized_file(self) -> str:
        return BINARIZED if self.subset is None else f"binarized-{self.subset}.tif"


@dataclass
class TileResult:
    """What one tile gives the merge: its objects (polygons in the target CRS as WKB, their
    fields, depth in m and envelope), or the reason it was skipped."""

    tile_id: str
    error: str | None = None
    crs_name: str = ""
    counts: dict = field(default_factory=dict)  # objects, removed_at_boundary, removed_too_small
    fields: dict = field(default_factory=dict)  # Region_ID, statistics, npixel, area_m2 (tile CRS)
    geometries: list = field(default_factory=list)  # WKB in the target CRS
    depths: np.ndarray = field(default_factory=lambda: np.zeros(0))
    envelopes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # min x, max x, min y, max y
    written: dict = field(default_factory=dict)  # {tile output name: temporary file written}
    date: TileDate = field(default_factory=TileDate)  # when the tile was seen (from its id)
    coverage: bytes | None = None  # WKB of the tile's valid extent in the target CRS
    extent_as_given: str = ""  # TileSource.extent_as_given
    seconds: float = 0.0
    kept: int = 0  # objects of this tile in the merged map (set by the merge)
    outputs_failed: bool = False  # `error` is about writing OUTPUT_TILES (e.g. a full disk): the run fails
    warnings: list = field(default_factory=list)  # sentences for the log (e.g. rasters.percent_doubt)

    @property
    def count(self) -> int:
        return len(self.geometries)


class TileOutputsFailed(Exception):
    """A tile's own files (OUTPUT_TILES) could not be written: a fault of the run's outputs,
    not of the tile, so the run fails instead of skipping the tile."""


# -- finding tiles --------------------------------------------------------------------------
def find_tiles(inputs, subset: str | None = None, looked_at: list | None = None
               ) -> tuple[list[TileSource], list[Skipped]]:
    """The tile folders under `inputs` (a folder searched recursively, links followed, or a
    list of folders or of their probabilities files), each once, sorted. A tile folder holds
    probabilities.tif; with `subset`, a tile without probabilities-{subset}.tif is skipped.
    Other folders are passed over; `looked_at`, if given, receives (folder, why it is not a
    tile) for each, so that finding no tile can say why. A tile's id is its folder's name, or,
    when two tiles share a name, its path below the folder that holds them all."""
    roots = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    found, seen = [], set()
    for root in map(os.fspath, roots):
        if os.path.isfile(root):
            root = os.path.dirname(os.path.abspath(root))
        if not os.path.isdir(root):
            raise ValueError(f"{root!r} is not a folder")
        for folder, dirs, files in os.walk(root, followlinks=True):
            if os.path.realpath(folder) in seen:  # given twice, or a link back up: once is enough
                dirs[:] = []
                continue
            seen.add(os.path.realpath(folder))
            dirs.sort()
            if PROBABILITIES in files or (subset and f"probabilities-{subset}.tif" in files):
                found.append((os.path.abspath(folder), set(files)))
            elif looked_at is not None:
                looked_at.append((folder, _not_a_tile(files)))
    names = [os.path.basename(folder) for folder, _ in found]
    common = os.path.commonpath([folder for folder, _ in found]) if len(found) > 1 else ""
    if any(folder == common for folder, _ in found):  # a tile holding a tile: ids below its parent, never "."
        common = os.path.dirname(common)
    sources, skipped = [], []
    wanted = PROBABILITIES if subset is None else f"probabilities-{subset}.tif"
    binarized = BINARIZED if subset is None else f"binarized-{subset}.tif"
    for (folder, files), name in zip(found, names):
        tile_id = os.path.relpath(folder, common).replace(os.sep, "/") if names.count(name) > 1 else name
        if wanted not in files:
            skipped.append(Skipped(tile_id, f"{folder} has no {wanted} (the ensemble member asked for); it has "
                                            f"{', '.join(sorted(f for f in files if f.startswith('probabilities')))}"))
            continue
        paths = {file: os.path.join(folder, file) for file in files}
        polygons = next((paths[file] for file in EXTENT_POLYGONS if file in files), None)
        sources.append(TileSource(tile_id, folder, paths[wanted], quality=paths.get(QUALITY),
                                  extent=None if QUALITY in files else paths.get(EXTENT),
                                  extent_polygons=None if QUALITY in files or EXTENT in files else polygons,
                                  binarized=paths.get(binarized)))
    return sorted(sources, key=lambda s: s.tile_id), skipped


def tiles_found(inputs, subset: str | None = None, stop_on_error: bool = False
                ) -> tuple[list[TileSource], list[Skipped]]:
    """find_tiles, and an error that says why when no tile is found (or, with `stop_on_error`,
    when a tile is skipped)."""
    looked_at = []
    sources, skipped = find_tiles(inputs, subset, looked_at)
    if stop_on_error and skipped:
        raise ValueError(f"tile {skipped[0].tile_id}: {skipped[0].reason}")
    if not sources:
        raise ValueError(no_tile_found(inputs, looked_at) if not skipped else
                         f"no tile found in {inputs!r}: " + "; ".join(f"{item.tile_id}: {item.reason}"
                                                                      for item in skipped[:12]))
    return sources, skipped


def _not_a_tile(files) -> str:
    shown = sorted(files)
    listing = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if len(shown) > 5 else "")
    return f"no {PROBABILITIES}" + (f" (holds {listing})" if shown else " (empty)")


def no_tile_found(inputs, looked_at: list) -> str:
    """The error when `inputs` hold no tile: what was looked at and why each is not a tile."""
    lines = [f"{folder}: {why}" for folder, why in looked_at[:12]]
    more = f"; and {len(looked_at) - 12} more folders" if len(looked_at) > 12 else ""
    return (f"no tile found in {inputs!r}: a tile is a folder with {PROBABILITIES} (DARTS' tile folders, or "
            f"{PROBABILITIES} with {QUALITY}). Looked at: " + "; ".join(lines) + more)


# -- one tile ---------------------------------------------------------------------------------
def process_tile(source: TileSource, settings: TileSettings, target_crs, outputs: dict | None = None,
                 progress: Progress | None = None, read=None) -> TileResult:
    """Postprocess one tile and return its objects in the target CRS; a tile that cannot be
    read or processed gives a result with `error` (the run goes on). `outputs` ({name of
    TILE_OUTPUTS: path}) are the tile's own files to write, in its CRS. `read()`, if given,
    gives the tile's read_tile_inputs (or raises what it raised), e.g. read ahead in a thread."""
    start = time.perf_counter()
    try:
        result = _process_tile(source, settings, target_crs, outputs or {}, progress, read)
    except TileOutputsFailed as error:  # not the tile's fault: the run fails
        result = TileResult(source.tile_id, error=" ".join(str(error).split()), outputs_failed=True)
    except (ValueError, TypeError, OSError, RuntimeError, MemoryError) as error:
        if isinstance(error, MemoryError):
            error = f"not enough memory ({' '.join(str(error).split()) or 'MemoryError'})"
        result = TileResult(source.tile_id, error=" ".join(str(error).split()))
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class TileInputs:
    """A tile read as processtiles reads it (read_tile_inputs): its grid, probabilities (0..1,
    NaN none; or DARTS' uint8 percent as stored) and quality mask (for a tile postprocessed already: its extent as given, as 2),
    and prepare_export's options for it (without the threshold and minimum size)."""

    name: str  # <tile id>/<probabilities file>, for messages
    grid: object
    srs: object
    probabilities: np.ndarray  # float 0..1 (NaN: none), or DARTS' uint8 percent as stored (nodata 255)
    quality: np.ndarray
    scale: str  # "fraction" or "percent", as read
    options: dict
    exclusion: dict = field(default_factory=dict)  # excluded_share, exclusion_overlaps (with an exclusion mask)
    doubt: str | None = None  # rasters.percent_doubt, for the log

    def lookup(self, statistics: str = "fraction"):
        """What the probabilities' values stand for in the `statistics` scale when they are DARTS'
        percent as stored (encodings.percent_lookup, for Objects.statistics); None for floats."""
        from ..kernels.encodings import percent_lookup

        return percent_lookup(statistics) if self.probabilities.dtype == np.uint8 else None


def read_tile_inputs(source: TileSource, settings: TileSettings) -> TileInputs:
    """Read one tile as processtiles does: its grid checked (a CRS and geotransform; the masks
    on the probabilities' grid), the probabilities decoded, the quality mask, or else the tile's
    valid extent as given (tile_extent; then no second erosion or edge band), the exclusion
    polygons burnt onto its grid; raises ValueError naming the tile's file. DARTS' uint8
    percent stays as stored (encodings.stored_percent, checked as decoding checks it; the core
    thresholds it in uint8, TileInputs.lookup gives the floats it stands for), without a float32
    copy of the tile (4 bytes a pixel)."""
    from ..files.geotiff import read_band
    from ..files.exclusion import exclusion_mask
    from ..files.grids import check_same_grid, grid_of
    from ..kernels.encodings import (all_nodata, all_stored_nodata, decode_probabilities, decode_quality_read,
                                     keeps_percent, percent_doubt, probability_scale, stored_percent)

    name = f"{source.tile_id}/{os.path.basename(source.probabilities)}"
    grid = grid_of(source.probabilities, name)
    srs = spatial_reference(grid.crs)
    if srs is None or not grid.has_geotransform:
        raise ValueError(f"{name} has no {'CRS' if srs is None else 'geotransform'}: the tile cannot be placed on the map")
    for path in (source.quality, source.extent, source.binarized if settings.binarization == "as_exported" else None):
        if path:
            check_same_grid(name, grid, f"{source.tile_id}/{os.path.basename(path)}",
                            grid_of(path, f"{source.tile_id}/{os.path.basename(path)}"))
    if settings.binarization == "as_exported" and not source.binarized:
        raise ValueError(f"{source.tile_id} has no {settings.binarized_file} to take as exported")
    raw, nodata = read_band(source.probabilities, name)
    scale = probability_scale(raw.dtype, name, settings.scale)
    stored = keeps_percent(raw.dtype, settings.scale) and raw.ndim == 2
    probabilities = stored_percent(raw, nodata, name) if stored else decode_probabilities(raw, nodata, name,
                                                                                            settings.scale)
    if all_stored_nodata(probabilities) if stored else all_nodata(probabilities):
        raise ValueError(f"{name} has no valid pixel: every pixel is nodata")
    # (percent_doubt looks at float rasters only: the largest value is not needed for others)
    doubt = percent_doubt(float(np.nanmax(probabilities)) * 100, raw.dtype, name) \
        if scale == "percent" and raw.dtype.kind == "f" else None
    options = dict(mask_erosion_size=settings.mask_erosion_size, edge_erosion_size=settings.edge_erosion_size,
                   quality_level=settings.quality_level, boundary=settings.boundary,
                   size_connectivity=settings.size_connectivity, device=settings.device, probability_scale=scale)
    if source.quality:
        mask_name = f"{source.tile_id}/{QUALITY}"
        data, mask_nodata = read_band(source.quality, mask_name)
        quality = decode_quality_read(data, mask_nodata, mask_name)
        del data  # (read just now: kept as it is when it needs no decoding, else decoded into a copy)
    else:  # postprocessed already: the extent is valid as it is (high quality, no erosion, no edge band)
        quality = tile_extent(source, probabilities, grid).astype(np.uint8) * 2
        options.update(mask_erosion_size=0, edge_erosion_size=0, quality_level=2)
    exclusion = {}  # the share of the tile's pixels excluded, whether the polygons overlap it in their CRS
    if settings.exclude:
        path, layer, where = settings.exclude
        options["max_excluded_share"] = settings.max_excluded_share
        options["exclude"] = exclusion_mask(path, probabilities.shape, grid.geotransform, grid.crs, layer=layer,
                                            where=where, what="exclusion mask", info=exclusion)
        exclusion = {"excluded_share": float(options["exclude"].mean()),
                     "exclusion_overlaps": bool(exclusion.get("overlaps", True))}
    return TileInputs(name, grid, srs, probabilities, quality, scale, options, exclusion, doubt)


def _process_tile(source, settings, target_crs, outputs, progress, read=None) -> TileResult:
    import concurrent.futures

    from ..products.api import prepare_export_thresholds
    from ..files.geotiff import read_band
    from ..kernels.objects import Objects
    from ..kernels.encodings import decode_binary
    from ..files.tags import describe_run, read_tags
    from ..files.layers import Layout, write_layer
    from ..kernels.encodings import statistics_values
    from ..products.polygons import object_features

    report = progress or (lambda fraction, message: None)
    inputs = read_tile_inputs(source, settings) if read is None else read()
    grid, srs, probabilities, doubt = inputs.grid, inputs.srs, inputs.probabilities, inputs.doubt
    inherited = read_tags(source.probabilities)  # DARTS' tags: its tile id here, carried into the tile's files
    seen = source.date(inherited)
    # DARTS' percent as stored: each object pixel looked up as statistics_values gives it (lookup);
    # float probabilities as they are (fraction) or as statistics_values gives them (percent).
    lookup = inputs.lookup(settings.statistics)
    values = probabilities if lookup is not None or settings.statistics == "fraction" else \
        statistics_values(probabilities, "percent")
    options = dict(min_object_size=settings.min_object_size, **inputs.options)
    quality, exclusion = inputs.quality, inputs.exclusion
    del inputs
    by_threshold = {}
    # prepare_export at the one threshold, without the NaN-masked copy of the probabilities
    # (480 MB on a full tile) that no output of a tile uses: the same objects and extent.
    ((_, result),) = prepare_export_thresholds(
        {"probabilities": probabilities, "quality_data_mask": quality}, [settings.threshold], **options,
        object_counts=by_threshold, progress=lambda f, m: report(0.6 * f, m), masked_probabilities=False).items()
    (counts,) = by_threshold.values()
    del quality, probabilities
    binary, extent = result["binarized_segmentation"], result["extent"]
    # The coverage outline (GDAL's tracing of the extent, which releases the GIL) is traced on the
    # second core while this thread labels and traces the objects.
    outlining = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tile coverage")
    coverage = outlining.submit(extent_outline, extent, grid.geotransform, srs)
    outlining.shutdown(wait=False)
    if settings.binarization == "as_exported":  # DARTS' objects as they are, inside the extent
        what = f"{source.tile_id}/{os.path.basename(source.binarized)}"
        binary = decode_binary(*read_band(source.binarized, what), what) & (extent != 0)
        counts = {"binarized_segmentation": {"objects": Objects(binary).count, "removed_at_boundary": 0,
                                             "removed_too_small": 0}}
    objects = Objects(binary)
    fields, geometries = object_features(binary, grid.geotransform, srs, values, lambda f, m: report(0.6 + 0.3 * f, m),
                                         objects=objects, lookup=lookup)
    depths = object_depths(objects, extent) * pixel_size_m(grid.geotransform, srs, extent.shape[0])
    del values, result, objects

    if outputs:
        report(0.9, "Writing the tile's files")
        record = settings.on_record()
        if not source.quality:  # the exported extent was used as it is
            record.update(mask_erosion_size=0, edge_erosion_size=0, quality_level=source.extent_as_given)
        tags = describe_run("processtiles", record, inherited, source.tile_id)
        binary_bytes = binary.view(np.uint8) if binary.dtype == bool else binary.astype(np.uint8)  # 0/1, no copy
        writers = {
            "binarized.tif": lambda path: write_geotiff(path, binary_bytes, grid.geotransform, grid.crs,
                                                        tags=tags, description=LONG_NAMES["binarized"]),
            "extent.tif": lambda path: write_geotiff(path, extent, grid.geotransform, grid.crs, tags=tags,
                                                     description=LONG_NAMES["extent"]),
            "prediction_segments.gpkg": lambda path: write_layer(
                path, "prediction_segments", srs, fields, [geometry.Clone() for geometry in geometries],
                layout=Layout(statistics=settings.statistics, geometry_name="geom", tags=tags))}  # DARTS' schema
        for file, write in writers.items():
            for leftover in (outputs[file], *(outputs[file] + suffix for suffix in SIDE_FILES)):
                with contextlib.suppress(FileNotFoundError):  # from an attempt whose worker died
                    os.remove(leftover)
            try:
                write(outputs[file])
            except (OSError, RuntimeError) as error:
                reason = getattr(error, "strerror", None) or str(error).split(": ")[-1] or type(error).__name__
                raise TileOutputsFailed(f"cannot write {file} ({reason})") from None
    _, _, osr = osgeo()
    to_target = osr.CoordinateTransformation(srs, spatial_reference(target_crs))
    coverage = coverage.result()
    coverage.Transform(to_target)
    envelopes = np.zeros((len(geometries), 4))
    wkbs = []
    for index, geometry in enumerate(geometries):
        geometry.Transform(to_target)
        envelopes[index] = geometry.GetEnvelope()
        wkbs.append(bytes(geometry.ExportToWkb()))
    counts = {**counts["binarized_segmentation"], **exclusion}
    return TileResult(source.tile_id, crs_name=srs.GetName(), counts=counts, warnings=[doubt] if doubt else [], fields=fields,
                      geometries=wkbs,
                      depths=depths, envelopes=envelopes, written=dict(outputs), date=seen,
                      coverage=bytes(coverage.ExportToWkb()), extent_as_given=source.extent_as_given)


def read_inference(folder: str, tile_id: str) -> dict:
    """The settings DARTS wrote into the tile's darts_inference.json ({} without one); a
    damaged file is an error naming it (the tile is skipped)."""
    import json

    path = os.path.join(folder, INFERENCE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{tile_id}/{INFERENCE} cannot be read ({error})") from None
    if not isinstance(found, dict):
        raise ValueError(f"{tile_id}/{INFERENCE} holds no DARTS_* settings (a JSON object is expected)")
    return found


def tile_extent(source: TileSource, probabilities, grid) -> np.ndarray:
    """The valid extent (bool) of a tile postprocessed already: extent.tif, DARTS'
    prediction_extent polygons burnt at pixel centres (in any CRS: reprojected), or where the
    probabilities hold a value."""
    from ..files.exclusion import exclusion_mask
    from ..files.geotiff import read_band
    from ..kernels.encodings import decode_binary

    if source.extent:
        what = f"{source.tile_id}/{EXTENT}"
        return decode_binary(*read_band(source.extent, what), what)
    if source.extent_polygons:
        what = f"{source.tile_id}/{os.path.basename(source.extent_polygons)}"
        with quiet_gdal():  # DARTS' GeoPackage 1.4 on an older GDAL: read fine, with a warning only
            return exclusion_mask(source.extent_polygons, probabilities.shape, grid.geotransform, grid.crs, what=what)
    if probabilities.dtype == np.uint8:  # DARTS' percent as stored
        return probabilities != PERCENT_NODATA
    return ~np.isnan(probabilities)


@contextlib.contextmanager
def quiet_gdal():
    """GDAL's warnings (not its errors) kept out of the run's output while reading."""
    gdal, _, _ = osgeo()
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # failures still raise (exceptions are on)
    try:
        yield
    finally:
        gdal.PopErrorHandler()


def extent_outline(extent, geotransform, srs):
    """The valid extent as one MultiPolygon (pixel edges) in the tile's CRS: where the tile
    could have seen a slump."""
    _, ogr, _ = osgeo()
    from ..files.gdal import gdal_geotransform
    from ..files.layers import trace_collapsed

    # prepare_export's extent (uint8 0/1) is traced as it is; any other raster as 0/1 bytes
    ones = extent if extent.dtype == np.uint8 and extent.max(initial=0) <= 1 else (extent != 0).astype(np.uint8)
    traced = trace_collapsed(ones, gdal_geotransform(geotransform), srs)
    return traced.get(1) or ogr.Geometry(ogr.wkbMultiPolygon)


def object_depths(objects, extent) -> np.ndarray:
    """How deep each object lies inside the valid extent, in pixels: the chessboard distance
    from its pixels to the nearest block of DEPTH_BLOCK x DEPTH_BLOCK pixels that holds a pixel
    outside the extent (beyond the raster's edges is outside), in whole blocks; 0 for an
    object that touches a pixel outside the extent or the raster's edge (cut: with boundary
    "clip", or an extent without an edge band). Blocks make it a distance transform of a 16x
    smaller raster instead of a full tile's (4 s, 1.6 GB)."""
    from scipy import ndimage

    height, width = extent.shape
    if objects.count == 0:
        return np.zeros(0)
    inside = blocks_inside(extent, DEPTH_BLOCK)
    blocks_deep = ndimage.distance_transform_cdt(np.pad(inside, 1), metric="chessboard")[1:-1, 1:-1]
    flat, labels = objects.pixels()
    pixel_rows, pixel_cols = np.divmod(flat, width)
    values = blocks_deep[pixel_rows // DEPTH_BLOCK, pixel_cols // DEPTH_BLOCK]
    deepest = np.asarray(ndimage.minimum(values, labels, np.arange(1, objects.count + 1)), dtype=float)
    deepest[np.unique(labels[_touches_outside(extent, pixel_rows, pixel_cols)]) - 1] = 0
    return deepest * DEPTH_BLOCK


def blocks_inside(extent: np.ndarray, block: int) -> np.ndarray:
    """Which block x block blocks of `extent` lie wholly inside it (every pixel non-zero; a
    block reaching beyond the raster does not). An extent of 0/1 bytes (bool, or
    prepare_export's uint8) is read as words: each block's rows ANDed word by word, then each
    block's words compared with all-ones bytes; any other is compared with 0 first, block row
    by block row."""
    height, width = extent.shape
    rows, cols, full_rows, full_cols = -(-height // block), -(-width // block), height // block, width // block
    inside = np.zeros((rows, cols), bool)  # beyond the raster: outside
    word = next((np.dtype(kind) for kind in ("u8", "u4", "u2", "u1") if block % np.dtype(kind).itemsize == 0))
    ones = word.type(int.from_bytes(b"\x01" * word.itemsize, "little"))
    if full_rows == 0 or full_cols == 0:
        return inside
    if extent.dtype == bool or (extent.dtype == np.uint8 and extent.max(initial=0) <= 1):
        area = extent[:full_rows * block, :full_cols * block]
        if not area.flags.c_contiguous and area.strides[1] != 1:
            area = np.ascontiguousarray(area)
        words = area.view(np.uint8).view(word).reshape(full_rows, block, full_cols * block // word.itemsize)
        anded = np.bitwise_and.reduce(words, axis=1)
    else:
        anded = np.empty((full_rows, full_cols * block), np.uint8)
        for row in range(full_rows):  # one block row at a time: no full-size temporary
            window = extent[row * block:(row + 1) * block, :full_cols * block] != 0
            np.logical_and.reduce(window, axis=0, out=anded[row].view(bool))
        anded = anded.view(word)
    inside[:full_rows, :full_cols] = (anded.reshape(full_rows, full_cols, -1) == ones).all(axis=2)
    return inside


def _touches_outside(extent, rows, cols) -> np.ndarray:
    """Which of the pixels (rows, cols) have one of their 8 neighbours outside the extent or
    beyond the raster (looked up for these pixels only, not through a padded copy)."""
    height, width = extent.shape
    touching = np.zeros(rows.shape, bool)
    for row_step in (-1, 0, 1):
        for col_step in (-1, 0, 1):
            if row_step == col_step == 0:
                continue
            near_rows, near_cols = rows + row_step, cols + col_step
            beyond = (near_rows < 0) | (near_rows >= height) | (near_cols < 0) | (near_cols >= width)
            touching |= beyond | (extent[np.clip(near_rows, 0, height - 1), np.clip(near_cols, 0, width - 1)] == 0)
    return touching


def pixel_size_m(geotransform, srs, height: int) -> float:
    """The side in metres of a square of the pixel's area (rotated grids included); for a
    geographic CRS at the raster's middle latitude (111 320 m per degree of latitude)."""
    area = abs(geotransform[1] * geotransform[5] - geotransform[2] * geotransform[4])
    if srs.IsProjected():
        return float(np.sqrt(area)) * srs.GetLinearUnits()
    latitude = geotransform[3] + geotransform[5] * height / 2
    return float(np.sqrt(area * np.cos(np.radians(latitude)))) * 111320.0


TILE_BYTES_PER_PIXEL = 16  # one tile's processing at its peak: ~1.7 GB for 10980 x 10980 px (docs/benchmarks.md)
