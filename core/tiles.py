"""From tiles to a region: many DARTS tiles in, one map of thaw-slump polygons out.

A tile is a folder holding `probabilities.tif` (or an ensemble member's
`probabilities-{subset}.tif`). With `quality_data_mask.tif` the whole postprocessing runs, as
`prepare_export`. Otherwise the tile was postprocessed already, and its valid extent is used as
it is (no second erosion or edge band): `extent.tif` (this plugin's tile outputs), else DARTS'
`prediction_extent.gpkg` (or `.parquet`) burnt onto the tile's grid at pixel centres, else the
probabilities' valid pixels. The objects are binarized again from the probabilities inside that
extent with the run's settings, or taken from the exported `binarized.tif` as they are.
Folders without probabilities (DARTS' `_metadata_*` folders, ...) are passed over.

Each tile's date comes from its id (darts_ids.py). Tiles are merged per group (by default per
year, as DARTS' products are yearly): objects of different groups are never merged nor cut
against each other, and each group is complete on its own. Each tile is processed alone (`process_tile`: in this
process, in worker processes or on dask.distributed workers, so memory holds a few tiles
whatever their number) and its objects come back as polygons in the target CRS. The merge
(`merge_objects`) then makes one map where tiles overlap:

- Objects are taken deepest first: depth is how far an object lies inside its tile's valid
  extent (from the tile's edges and from invalid data). A tile sees an object best far from
  where its view ends, and objects that touch that end are removed whole in their tile
  (boundary "remove"), so a slump cut by one tile's edge comes whole from its neighbour.
- An object that lies at least half inside an object already taken is the same slump seen by
  another tile: it is dropped and counted in the kept one's `n_tiles`.
- Otherwise what overlaps taken objects is cut off it (a sliver where neighbouring slumps meet
  on two tiles' pixel grids, or a neighbour that another tile saw joined to it), and the rest
  stays if it still covers `min_object_size` pixels. So no two features of the map overlap,
  and no slump that some tile saw whole is lost because another tile joined it to a neighbour.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .api import (BOUNDARY_MODES, CONNECTIVITIES, check_choice, check_quality_level, check_share, check_size,
                  check_threshold)
from .files import SIDE_FILES, AtomicFiles, open_read_only, osgeo, spatial_reference, write_geotiff
from .darts_ids import GROUPINGS, TileDate, group_key, tile_date
from .rasters import SCALES
from .vectorize import STATISTICS_SCALES

Progress = Callable[[float, str], None]

PROBABILITIES, QUALITY, EXTENT = "probabilities.tif", "quality_data_mask.tif", "extent.tif"
BINARIZED, INFERENCE = "binarized.tif", "darts_inference.json"
EXTENT_POLYGONS = ("prediction_extent.gpkg", "prediction_extent.parquet")  # DARTS' extent, in this order
BINARIZATIONS = ("recompute", "as_exported")  # from the probabilities with the run's settings, or binarized.tif
# NSIDC Sea Ice Polar Stereographic North: the CRS of ArcticDEM and of many pan-Arctic
# permafrost products; one projected CRS for every tile north of 60°N.
DEFAULT_TARGET_CRS = "EPSG:3413"
DEPTH_BLOCK = 4  # depth inside the extent is measured in blocks of 4 x 4 pixels (cheap; exact to 4 px)
SAME_OBJECT_OVERLAP = 0.5  # share of an object inside one already taken from which it is the same slump
TILE_OUTPUTS = ("binarized.tif", "extent.tif", "prediction_segments.gpkg")


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
class TileSettings:
    """The postprocessing parameters, named and defaulted as darts:prepareexport's."""

    threshold: float = 0.5
    mask_erosion_size: int = 10
    edge_erosion_size: int | None = None
    min_object_size: int = 32
    quality_level: int | str = "low_quality"
    boundary: str = "remove"
    size_connectivity: int = 8
    device: str = "auto"
    statistics: str = "fraction"  # the polygons' statistics: of the probabilities 0..1, or DARTS' percent
    scale: str = "auto"  # how probabilities.tif is read (rasters.SCALES): from its data type, fraction or percent
    exclude: tuple | None = None  # (file, layer or None, OGR filter or None) of exclusion polygons, any CRS
    subset: str | None = None  # an ensemble member: probabilities-{subset}.tif instead of probabilities.tif
    binarization: str = "recompute"  # BINARIZATIONS: from the probabilities, or the exported binarized.tif
    group_by: str = "year"  # darts_ids.GROUPINGS: tiles of one group are merged, groups kept apart
    max_excluded_share: float = 0.0  # objects with more of their pixels excluded are removed (0: any)

    def checked(self) -> TileSettings:
        """The same settings, checked once before any tile is read (a bad value is an error of
        the run, not of every tile)."""
        check_threshold(self.threshold)
        check_size("mask_erosion_size", self.mask_erosion_size)
        if self.edge_erosion_size is not None:
            check_size("edge_erosion_size", self.edge_erosion_size)
        check_size("min_object_size", self.min_object_size)
        check_quality_level(self.quality_level)
        check_choice("boundary", self.boundary, BOUNDARY_MODES)
        check_choice("size_connectivity", self.size_connectivity, CONNECTIVITIES)
        check_choice("statistics", self.statistics, STATISTICS_SCALES)
        check_choice("probability scale", self.scale, SCALES)
        check_choice("binarization", self.binarization, BINARIZATIONS)
        check_choice("group_by", self.group_by, GROUPINGS)
        check_share("max_excluded_share", self.max_excluded_share, self.boundary)
        if self.subset is not None and (not self.subset or "/" in self.subset or os.sep in self.subset):
            raise ValueError(f"subset must be an ensemble member's name (as in probabilities-<name>.tif), "
                             f"got {self.subset!r}")
        if self.exclude is not None:
            from .exclusion import is_vector, open_polygons

            if os.path.exists(self.exclude[0]) and not is_vector(self.exclude[0]):
                raise ValueError(f"the exclusion mask {self.exclude[0]!r} must be polygons: tiles lie on different "
                                 f"grids, and a raster mask fits one grid only")
            with open_polygons(*self.exclude):  # a missing file or layer: an error before any tile
                pass
        return self

    def on_record(self) -> dict:
        """The settings as they go into the output's metadata."""
        edge = self.mask_erosion_size if self.edge_erosion_size is None else self.edge_erosion_size
        return {"threshold": self.threshold, "mask_erosion_size": self.mask_erosion_size, "edge_erosion_size": edge,
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


@dataclass
class Region:
    """The merged objects of a run (`write` puts them into a GeoPackage) and what the run did,
    for the log and the report."""

    tiles: list[TileResult]
    skipped: list[Skipped]
    kept: list  # MergedObject, in the order they were taken
    duplicates: int  # objects dropped because another tile's object is the same slump
    clipped: int  # objects that lost a sliver to a neighbouring object
    seconds: float
    target_crs: str
    record: dict  # the run's parameters, on record in the output
    groups: dict = field(default_factory=dict)  # {group (year, date or "all"): its tiles, features, merges}

    @property
    def features(self) -> int:
        return len(self.kept)

    def write(self, path: str, layer: str) -> int:
        """The merged map as the GeoPackage layer `layer` of the new file `path`, and the tiles'
        valid extents as the layer coverage_layer(layer) beside it; the map's count."""
        from .metadata import describe_run

        self.record["coverage_layer"] = coverage_layer(layer)
        tags = describe_run("processtiles", self.record)
        write_merged(path, layer, self.target_crs, self.kept, tags, self.record["statistics_scale"])
        write_coverage(path, coverage_layer(layer), self.target_crs, self.tiles, tags)
        return self.features


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
                 progress: Progress | None = None) -> TileResult:
    """Postprocess one tile and return its objects in the target CRS; a tile that cannot be
    read or processed gives a result with `error` (the run goes on). `outputs` ({name of
    TILE_OUTPUTS: path}) are the tile's own files to write, in its CRS."""
    start = time.perf_counter()
    try:
        result = _process_tile(source, settings, target_crs, outputs or {}, progress)
    except TileOutputsFailed as error:  # not the tile's fault: the run fails
        result = TileResult(source.tile_id, error=" ".join(str(error).split()), outputs_failed=True)
    except (ValueError, TypeError, OSError, RuntimeError, MemoryError) as error:
        if isinstance(error, MemoryError):
            error = f"not enough memory ({' '.join(str(error).split()) or 'MemoryError'})"
        result = TileResult(source.tile_id, error=" ".join(str(error).split()))
    result.seconds = time.perf_counter() - start
    return result


def _process_tile(source, settings, target_crs, outputs, progress) -> TileResult:
    from .api import prepare_export
    from .blockwise import read_band
    from .grids import check_same_grid, grid_of
    from .objects import Objects
    from .rasters import (all_nodata, decode_binary, decode_probabilities, decode_quality, percent_doubt,
                          probability_scale, quality_as_read)
    from .exclusion import exclusion_mask
    from .metadata import LONG_NAMES, describe_run, read_tags
    from .rasters import PERCENT_NODATA
    from .vectorize import Layout, object_features, statistics_values, write_layer

    report = progress or (lambda fraction, message: None)
    name = f"{source.tile_id}/{os.path.basename(source.probabilities)}"
    grid = grid_of(source.probabilities, name)
    srs = spatial_reference(grid.crs)
    if srs is None or not grid.has_geotransform:
        raise ValueError(f"{name} has no {'CRS' if srs is None else 'geotransform'}: the tile cannot be placed on the map")
    inherited = read_tags(source.probabilities)  # DARTS' tags: its tile id here, carried into the tile's files
    seen = tile_date([(INFERENCE, read_inference(source.folder, source.tile_id).get("DARTS_tileid")),
                      (f"{os.path.basename(source.probabilities)}'s DARTS_tileid", inherited.get("DARTS_tileid")),
                      ("the folder name", os.path.basename(source.folder))])
    for path in (source.quality, source.extent, source.binarized if settings.binarization == "as_exported" else None):
        if path:
            check_same_grid(name, grid, f"{source.tile_id}/{os.path.basename(path)}",
                            grid_of(path, f"{source.tile_id}/{os.path.basename(path)}"))
    if settings.binarization == "as_exported" and not source.binarized:
        raise ValueError(f"{source.tile_id} has no {settings.binarized_file} to take as exported")
    raw, nodata = read_band(source.probabilities, name)
    probabilities = decode_probabilities(raw, nodata, name, settings.scale)
    scale = probability_scale(raw.dtype, name, settings.scale)
    if all_nodata(probabilities):
        raise ValueError(f"{name} has no valid pixel: every pixel is nodata")
    # (percent_doubt looks at float rasters only: the largest value is not needed for others)
    doubt = percent_doubt(float(np.nanmax(probabilities)) * 100, raw.dtype, name) \
        if scale == "percent" and raw.dtype.kind == "f" else None
    if settings.statistics == "fraction":  # of the probabilities as read (as statistics_values would give them)
        values = probabilities
    elif raw.dtype == np.uint8 and settings.scale != "fraction":  # DARTS' percent as it is (k/100 can round down)
        values = statistics_values(np.where(np.isnan(probabilities), PERCENT_NODATA, raw).astype(np.uint8), "percent")
    else:
        values = statistics_values(probabilities, "percent")
    del raw
    options = dict(bin_threshold=settings.threshold, mask_erosion_size=settings.mask_erosion_size,
                   edge_erosion_size=settings.edge_erosion_size, min_object_size=settings.min_object_size,
                   quality_level=settings.quality_level, boundary=settings.boundary,
                   size_connectivity=settings.size_connectivity, device=settings.device, probability_scale=scale)
    if source.quality:
        mask_name = f"{source.tile_id}/{QUALITY}"
        data, mask_nodata = read_band(source.quality, mask_name)
        quality = data if quality_as_read(data, mask_nodata) else decode_quality(data, mask_nodata, mask_name)
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
    counts = {}
    result = prepare_export({"probabilities": probabilities, "quality_data_mask": quality}, **options,
                            object_counts=counts, progress=lambda f, m: report(0.6 * f, m))
    del quality, probabilities
    binary, extent = result["binarized_segmentation"], result["extent"]
    if settings.binarization == "as_exported":  # DARTS' objects as they are, inside the extent
        what = f"{source.tile_id}/{os.path.basename(source.binarized)}"
        binary = decode_binary(*read_band(source.binarized, what), what) & (extent != 0)
        counts = {"binarized_segmentation": {"objects": Objects(binary).count, "removed_at_boundary": 0,
                                             "removed_too_small": 0}}
    objects = Objects(binary)
    fields, geometries = object_features(binary, grid.geotransform, srs, values, lambda f, m: report(0.6 + 0.3 * f, m),
                                         objects=objects)
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
    coverage = extent_outline(extent, grid.geotransform, srs)
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
    from .blockwise import read_band
    from .exclusion import exclusion_mask
    from .rasters import decode_binary

    if source.extent:
        what = f"{source.tile_id}/{EXTENT}"
        return decode_binary(*read_band(source.extent, what), what)
    if source.extent_polygons:
        what = f"{source.tile_id}/{os.path.basename(source.extent_polygons)}"
        with quiet_gdal():  # DARTS' GeoPackage 1.4 on an older GDAL: read fine, with a warning only
            return exclusion_mask(source.extent_polygons, probabilities.shape, grid.geotransform, grid.crs, what=what)
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
    from .files import gdal_geotransform
    from .vectorize import trace

    traced = trace((extent != 0).astype(np.uint8), gdal_geotransform(geotransform), srs)
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
    rows, cols = -(-height // DEPTH_BLOCK), -(-width // DEPTH_BLOCK)
    padded = np.zeros((rows * DEPTH_BLOCK, cols * DEPTH_BLOCK), bool)
    padded[:height, :width] = extent != 0
    inside = padded.reshape(rows, DEPTH_BLOCK, cols, DEPTH_BLOCK).all(axis=(1, 3))
    del padded
    blocks_deep = ndimage.distance_transform_cdt(np.pad(inside, 1), metric="chessboard")[1:-1, 1:-1]
    flat, labels = objects.pixels()
    pixel_rows, pixel_cols = np.divmod(flat, width)
    values = blocks_deep[pixel_rows // DEPTH_BLOCK, pixel_cols // DEPTH_BLOCK]
    deepest = np.asarray(ndimage.minimum(values, labels, np.arange(1, objects.count + 1)), dtype=float)
    deepest[np.unique(labels[_touches_outside(extent, pixel_rows, pixel_cols)]) - 1] = 0
    return deepest * DEPTH_BLOCK


def _touches_outside(extent, rows, cols) -> np.ndarray:
    """Which of the pixels (rows, cols) have one of their 8 neighbours outside the extent or
    beyond the raster."""
    valid = np.pad(extent != 0, 1)  # beyond the raster: outside
    stride = valid.shape[1]
    flat = (rows + 1) * stride + cols + 1
    touching = np.zeros(flat.shape, bool)
    for offset in (-stride - 1, -stride, -stride + 1, -1, 1, stride - 1, stride, stride + 1):
        touching |= ~valid.ravel()[flat + offset]
    return touching


def pixel_size_m(geotransform, srs, height: int) -> float:
    """The side in metres of a square of the pixel's area (rotated grids included); for a
    geographic CRS at the raster's middle latitude (111 320 m per degree of latitude)."""
    area = abs(geotransform[1] * geotransform[5] - geotransform[2] * geotransform[4])
    if srs.IsProjected():
        return float(np.sqrt(area)) * srs.GetLinearUnits()
    latitude = geotransform[3] + geotransform[5] * height / 2
    return float(np.sqrt(area * np.cos(np.radians(latitude)))) * 111320.0


# -- running many tiles --------------------------------------------------------------------
def python_for_workers() -> str:
    """The Python that worker processes start: this process's own interpreter. Inside QGIS
    `sys.executable` is QGIS itself (qgis, qgis_process) or whatever `python3` comes first on
    PATH (embedded Python guesses), so it counts only when it lies in this Python's prefix."""
    prefix = os.path.abspath(sys.exec_prefix)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [sys.executable, os.path.join(sys.exec_prefix, "bin", f"python{version}"),
                  os.path.join(sys.exec_prefix, "bin", "python3"), os.path.join(sys.exec_prefix, "python.exe")]
    for candidate in candidates:
        if (candidate and os.path.basename(candidate).lower().startswith("python") and os.path.isfile(candidate)
                and os.access(candidate, os.X_OK)
                and os.path.commonpath([os.path.abspath(candidate), prefix]) == prefix):
            return candidate
    raise RuntimeError(f"no Python {version} found in {sys.exec_prefix} to start worker processes with: set WORKERS "
                       f"to 1")


TILE_BYTES_PER_PIXEL = 16  # one tile's processing at its peak: ~1.7 GB for 10980 x 10980 px (docs/benchmarks.md)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes of memory available to new processes (Linux's MemAvailable; else free pages);
    None when unknown."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/meminfo") as handle:
            return int(next(line for line in handle if line.startswith("MemAvailable:")).split()[1]) * 1024
    with contextlib.suppress(AttributeError, OSError, ValueError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


def worker_count(requested: int, sources, available: int | None = None) -> tuple[int, str | None]:
    """(worker processes to start, a sentence when fewer than `requested`): never more than
    the tiles, the usable cores, or the tiles whose processing fits in `available` bytes
    (default: the memory available now) at once, the largest tile counted for each."""
    count = max(1, min(requested, len(sources), usable_cores()))
    reasons = []
    if requested > len(sources):
        reasons.append(f"{len(sources)} tile{'s' if len(sources) != 1 else ''}")
    if requested > usable_cores():
        reasons.append(f"{usable_cores()} usable cores")
    available = available_memory() if available is None else available
    if count > 1 and available:
        pixels = 0
        for source in sources:
            with contextlib.suppress(RuntimeError, AttributeError), open_read_only(source.probabilities) as dataset:
                pixels = max(pixels, dataset.RasterXSize * dataset.RasterYSize)
        need = pixels * TILE_BYTES_PER_PIXEL
        if need and count * need > available:
            count = max(1, int(available // need))
            reasons.append(f"each tile needs about {need / 2**30:.1f} GB and {available / 2**30:.1f} GB are available")
    if count >= requested:
        return count, None
    return count, f"WORKERS={requested} lowered to {count}: {'; '.join(reasons)}"


def run_tiles(jobs, workers: int = 1, client=None, heartbeat: Callable[[], None] | None = None):
    """Yield process_tile(*job) of every job as tiles finish: in this process (workers 1, no
    client), in `workers` processes, or on a dask.distributed `client`'s workers.
    `heartbeat()` is called while waiting; it may raise to cancel (running tiles are stopped)."""
    beat = heartbeat or (lambda: None)
    if client is None and workers <= 1:
        for job in jobs:
            beat()
            yield process_tile(*job, progress=lambda fraction, message: beat())
        return
    if client is not None:
        futures = [client.submit(process_tile, *job, pure=False) for job in jobs]
        try:
            for _, result in _as_finished(dict(zip(futures, jobs)), beat):
                yield result
        finally:
            client.cancel(futures)  # tiles already running on a worker still finish there
        return
    yield from _in_worker_processes(jobs, workers, beat)


def _in_worker_processes(jobs, workers: int, beat):
    """run_tiles in a pool of worker processes. When a worker dies (killed, out of memory),
    Python's pool breaks and every unfinished tile with it: those are run again in a new pool;
    tiles unfinished when a second pool breaks run one at a time, so only a tile that kills
    its own worker is skipped (and named)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    context.set_executable(python_for_workers())
    pending, attempts = list(jobs), {id(job): 0 for job in jobs}
    while pending:
        alone = any(attempts[id(job)] >= 2 for job in pending)
        batch = [next(job for job in pending if attempts[id(job)] >= 2)] if alone else pending
        for job in batch:
            attempts[id(job)] += 1
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1 if alone else workers, mp_context=context,
                                                      initializer=_end_with, initargs=(os.getpid(),))
        try:
            with _without_main_script():  # the workers start as they are submitted
                futures = {pool.submit(process_tile, *job): job for job in batch}
            for job, result in _as_finished(futures, beat, broken=concurrent.futures.process.BrokenProcessPool):
                if result is not None:
                    pending.remove(job)
                    yield result
                elif alone:  # this tile alone killed its worker
                    pending.remove(job)
                    yield TileResult(job[0].tile_id, error="its worker process died (killed, or out of memory?) "
                                                           "while processing it")
        finally:
            for process in list(getattr(pool, "_processes", {}).values()):  # the running tiles
                with contextlib.suppress(OSError):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)


def _as_finished(futures: dict, beat, broken=()):
    """(job, result) of each future as it finishes (dask's or concurrent.futures'); with
    `broken` (an exception type), (job, None) for each future that failed with it. Yields
    results only: run_tiles turns them into TileResults."""
    remaining = list(futures)
    while remaining:
        finished = [future for future in remaining if future.done()]
        for future in finished:
            remaining.remove(future)
            job = futures[future]
            try:
                yield job, future.result()
            except Exception as error:  # noqa: BLE001 (a worker failed; the tile is named)
                if broken and isinstance(error, broken):
                    yield job, None
                else:
                    reason = " ".join(str(error).split()) or type(error).__name__
                    yield job, TileResult(job[0].tile_id, error=f"its worker failed ({reason})")
        if not finished:
            beat()
            time.sleep(0.1)


def _end_with(parent: int) -> None:
    """In a worker process: end once the process that started it is gone (QGIS killed or
    crashed). Idle workers would otherwise wait for tiles forever: each holds the task queue
    open itself, so it never sees the queue close."""
    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, name="end with QGIS", daemon=True).start()


@contextlib.contextmanager
def _without_main_script():
    """Start worker processes without running the caller's main script again in each of them
    (what Python's "spawn" does; a script without `if __name__ == "__main__":`, QGIS's console
    or qgis_process would break): the workers need only this module."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


# -- the merge ------------------------------------------------------------------------------
# Bounds on the geometric work, so the merge ends in time proportional to its input whatever
# the shapes (a speckled tile gives one object of tens of thousands of diagonal parts, on
# which GEOS' Intersects never ends). Objects under both limits are compared whole, as they
# always were; larger ones piece by piece (their polygons, each cut into pieces of at most
# PIECE_VERTICES vertices), and only pieces whose envelopes meet are compared: the overlap
# areas are the same sums, and what is cut off is the same area.
SIMPLE_PARTS = 64  # an object of at most this many polygons ...
SIMPLE_VERTICES = 4096  # ... and vertices (rings included) is compared whole
PIECE_VERTICES = 512  # larger ones are compared in pieces of at most this many vertices
WIDE_CELLS = 4096  # an envelope over more grid cells is checked against every candidate instead


@dataclass
class MergedObject:
    result: TileResult
    index: int
    geometry: object = None  # OGR geometry, made when a neighbour is near (else the tile's WKB)
    tiles: set = field(default_factory=set)
    _pieces: object = field(default=None, repr=False)  # _Pieces of the geometry, made when needed

    def ogr(self):
        if self.geometry is None:
            _, ogr, _ = osgeo()
            self.geometry = ogr.CreateGeometryFromWkb(self.result.geometries[self.index])
        return self.geometry

    def pieces(self) -> _Pieces:
        if self._pieces is None:
            self._pieces = _Pieces(self.ogr())
        return self._pieces


class _Pieces:
    """An object's polygons cut into pieces of at most PIECE_VERTICES vertices (pieces of one
    polygon share only edges), their envelopes and a grid index of them."""

    def __init__(self, geometry):
        _, ogr, _ = osgeo()
        self.polygons, self.part_of = [], []
        multi = ogr.ForceToMultiPolygon(geometry.Clone())
        self.parts = [multi.GetGeometryRef(index).Clone() for index in range(multi.GetGeometryCount())]
        for part, polygon in enumerate(self.parts):
            for piece in _cut(polygon):
                self.polygons.append(piece)
                self.part_of.append(part)
        self.envelopes = (np.array([piece.GetEnvelope() for piece in self.polygons]) if self.polygons
                          else np.zeros((0, 4)))
        self._index = None

    def meeting(self, envelope) -> np.ndarray:
        """Indices of the pieces whose envelopes meet `envelope` (min x, max x, min y, max y)."""
        if self._index is None:
            self._index = _GridIndex(self.envelopes)
        return self._index.meeting(envelope)


class _GridIndex:
    """Which of many envelopes meet a given one, in time proportional to the answer: a uniform
    grid (cells twice the median envelope's side); envelopes over more than WIDE_CELLS cells
    are kept aside and checked every time (few: such envelopes are large)."""

    def __init__(self, envelopes: np.ndarray):
        self.envelopes = envelopes
        sides = np.maximum(envelopes[:, 1] - envelopes[:, 0], envelopes[:, 3] - envelopes[:, 2]) if len(envelopes) \
            else np.zeros(0)
        self.cell = max(float(np.median(sides)) * 2, 1e-9) if len(sides) else 1.0
        self.cells, wide = {}, []
        for position, (x0, x1, y0, y1) in enumerate(self._cell_ranges(envelopes)):
            if (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS:
                wide.append(position)
                continue
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    self.cells.setdefault((x, y), []).append(position)
        self.wide = np.array(wide, int)

    def _cell_ranges(self, envelopes):
        return np.floor(np.asarray(envelopes, float) / self.cell).astype(np.int64).reshape(-1, 4)

    def meeting(self, envelope) -> np.ndarray:
        x0, x1, y0, y1 = self._cell_ranges([envelope])[0]
        if (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS:  # a large envelope: every one is checked
            found = np.arange(len(self.envelopes))
        else:
            found = [position for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)
                     for position in self.cells.get((x, y), ())]
            found = np.unique(np.concatenate([np.array(found, int), self.wide]))
        return found[_meet(self.envelopes[found], envelope)] if len(found) else found


def _meet(envelopes: np.ndarray, envelope) -> np.ndarray:
    return ((envelopes[:, 0] <= envelope[1]) & (envelope[0] <= envelopes[:, 1])
            & (envelopes[:, 2] <= envelope[3]) & (envelope[2] <= envelopes[:, 3]))


def _vertices(geometry) -> int:
    count = geometry.GetPointCount()
    for index in range(geometry.GetGeometryCount()):
        count += _vertices(geometry.GetGeometryRef(index))
    return count


def _cut(polygon, depth: int = 0) -> list:
    """`polygon` in pieces of at most PIECE_VERTICES vertices: halved across its envelope's
    longer side until they are (each halving costs time proportional to its vertices)."""
    if _vertices(polygon) <= PIECE_VERTICES or depth >= 40:
        return [polygon]
    _, ogr, _ = osgeo()
    x0, x1, y0, y1 = polygon.GetEnvelope()
    if x1 - x0 >= y1 - y0:
        halves = [(x0, (x0 + x1) / 2, y0, y1), ((x0 + x1) / 2, x1, y0, y1)]
    else:
        halves = [(x0, x1, y0, (y0 + y1) / 2), (x0, x1, (y0 + y1) / 2, y1)]
    pieces = []
    for a, b, c, d in halves:
        box = ogr.CreateGeometryFromWkt(f"POLYGON (({a} {c}, {b} {c}, {b} {d}, {a} {d}, {a} {c}))")
        for piece in _polygons_of(polygon.Intersection(box)):
            pieces.extend(_cut(piece, depth + 1))
    return pieces


def _polygons_of(geometry) -> list:
    """The polygons of an overlay's result (a polygon, multipolygon or collection; lines and
    points, where pieces only touch, have no area and are left out)."""
    if geometry is None or geometry.IsEmpty():
        return []
    _, ogr, _ = osgeo()
    kind = ogr.GT_Flatten(geometry.GetGeometryType())
    if kind == ogr.wkbPolygon:
        return [geometry]
    if kind in (ogr.wkbMultiPolygon, ogr.wkbGeometryCollection):
        return [polygon for index in range(geometry.GetGeometryCount())
                for polygon in _polygons_of(geometry.GetGeometryRef(index).Clone())]
    return []


def _area(geometry) -> float:
    """The area of an overlay's result (0 where it is only points or lines)."""
    return sum(polygon.GetArea() for polygon in _polygons_of(geometry))


def _simple(item: MergedObject) -> bool:
    """Whether `item` is compared whole: few polygons, few vertices (its WKB holds 16 bytes a
    vertex, so its size bounds them without visiting them)."""
    geometry = item.ogr()
    return geometry.GetGeometryCount() <= SIMPLE_PARTS and geometry.WkbSize() <= 16 * SIMPLE_VERTICES


def merge_objects(results: list[TileResult], min_object_size: int = 0,
                  progress: Progress | None = None) -> tuple[list[MergedObject], int, int]:
    """(kept objects, duplicates dropped, objects clipped): the rule of this module's docstring.
    The order (depth, then tile id, then Region_ID) makes the map independent of the order in
    which tiles finished. `progress(fraction, message)` is called a few times a second and may
    raise to cancel."""
    tick = _Ticker(progress)
    candidates = [(-result.depths[index], result.tile_id, index, result)
                  for result in results for index in range(result.count)]
    candidates.sort(key=lambda item: item[:3])
    sizes = [max(result.envelopes[:, 1] - result.envelopes[:, 0]) for result in results if result.count]
    cell = max(1.0, 2 * float(np.median(sizes))) if sizes else 1.0
    index_of, wide = {}, []  # grid cell -> positions in kept; positions of kept objects over many cells
    kept, duplicates, clipped = [], 0, 0
    for number, (_, tile_id, index, result) in enumerate(candidates):
        tick(number / max(len(candidates), 1),
             lambda number=number: f"Merging the tiles' objects ({number} of {len(candidates)})")
        envelope = result.envelopes[index]
        x0, x1, y0, y1 = (int(envelope[0] // cell), int(envelope[1] // cell), int(envelope[2] // cell),
                          int(envelope[3] // cell))
        many = (x1 - x0 + 1) * (y1 - y0 + 1) > WIDE_CELLS
        cells = [] if many else [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
        looked = range(len(kept)) if many else [*{position for key in cells for position in index_of.get(key, ())},
                                                *wide]
        near = sorted({position for position in looked
                       if _envelopes_meet(envelope, kept[position].result.envelopes[kept[position].index])})
        candidate = MergedObject(result, index, tiles={tile_id})
        outcome = (_against_neighbours(candidate, [kept[position] for position in near], min_object_size,
                                       lambda number=number: tick(number / max(len(candidates), 1))) if near else "kept")
        if outcome == "duplicate":
            duplicates += 1
            continue
        clipped += outcome == "clipped"
        if many:
            wide.append(len(kept))
        for key in cells:
            index_of.setdefault(key, []).append(len(kept))
        kept.append(candidate)
        result.kept += 1
    tick(1.0, "Merged the tiles' objects", force=True)
    return kept, duplicates, clipped


class _Ticker:
    """Calls `progress` at most every 0.1 s (it may raise to cancel): cheap enough for every
    object and every piece compared."""

    def __init__(self, progress):
        self.progress, self.last, self.fraction, self.message = progress, 0.0, 0.0, ""

    def __call__(self, fraction: float | None = None, message=None, force: bool = False) -> None:
        """`message`: the text, or a function that makes it (made only when progress is called)."""
        if self.progress is None:
            return
        self.fraction = self.fraction if fraction is None else fraction
        self.message = self.message if message is None else message
        now = time.monotonic()
        if force or now - self.last >= 0.1:
            self.last = now
            self.progress(self.fraction, self.message() if callable(self.message) else self.message)


def _envelopes_meet(a, b) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


def _against_neighbours(candidate: MergedObject, neighbours: list[MergedObject], min_object_size: int,
                        tick: Callable[[], None] = lambda: None) -> str:
    """'duplicate' (and the neighbour it repeats counts its tile), 'clipped' or 'kept'."""
    if not (_simple(candidate) and all(_simple(neighbour) for neighbour in neighbours)):
        return _against_neighbours_in_pieces(candidate, neighbours, min_object_size, tick)
    geometry = candidate.ogr()
    area = geometry.GetArea()
    overlapping = []
    for neighbour in neighbours:
        tick()
        other = neighbour.ogr()
        if geometry.Intersects(other):
            overlap = geometry.Intersection(other).GetArea()
            if overlap > 0:  # not just touching edges or corners
                overlapping.append((overlap, neighbour))
    outcome, same = _same_slump(candidate, overlapping, area)
    if outcome != "cut":
        return outcome
    _, ogr, _ = osgeo()
    for _, neighbour in overlapping:
        geometry = geometry.Difference(neighbour.ogr())
    return _cut_off(candidate, ogr.ForceToMultiPolygon(geometry), area, same, min_object_size)


def _same_slump(candidate: MergedObject, overlapping: list, area: float) -> tuple[str, MergedObject | None]:
    """The rule of the module's docstring on the candidate's overlaps [(area, neighbour)]:
    ('kept', None) when it overlaps nothing; ('duplicate', neighbour) when it lies at least half
    inside that neighbour (which counts its tile); else ('cut', the neighbour it overlaps most,
    which is credited should too little of it be left after cutting)."""
    if not overlapping:
        return "kept", None
    largest, same = max(overlapping, key=lambda item: item[0])
    if largest >= SAME_OBJECT_OVERLAP * area:
        same.tiles.add(candidate.result.tile_id)
        return "duplicate", same
    return "cut", same


def _cut_off(candidate: MergedObject, geometry, area: float, same: MergedObject, min_object_size: int) -> str:
    """The candidate, having lost what overlapped its neighbours, is left with `geometry`:
    'clipped', or 'duplicate' when too little of it is left."""
    pixels = candidate.result.fields["npixel"][candidate.index] * geometry.GetArea() / area
    if geometry.IsEmpty() or pixels < max(min_object_size, 1):  # nothing of its own left: seen by `same` too
        same.tiles.add(candidate.result.tile_id)
        return "duplicate"
    candidate.geometry = geometry
    candidate._pieces = None
    return "clipped"


def _against_neighbours_in_pieces(candidate: MergedObject, neighbours: list[MergedObject], min_object_size: int,
                                  tick: Callable[[], None]) -> str:
    """_against_neighbours for objects of many parts or vertices: the same rule, piece by
    piece, comparing only pieces whose envelopes meet."""
    _, ogr, _ = osgeo()
    own = candidate.pieces()
    area = candidate.ogr().GetArea()
    overlapping, cuts = [], {}  # (overlap, neighbour); own piece -> neighbours' pieces to cut off it
    for neighbour in neighbours:
        theirs, overlap = neighbour.pieces(), 0.0
        for mine, piece in enumerate(own.polygons):
            for other in theirs.meeting(own.envelopes[mine]):
                tick()
                if piece.Intersects(theirs.polygons[other]):
                    shared = _area(piece.Intersection(theirs.polygons[other]))
                    if shared > 0:
                        overlap += shared
                        cuts.setdefault(mine, []).append(theirs.polygons[other])
        if overlap > 0:
            overlapping.append((overlap, neighbour))
    outcome, same = _same_slump(candidate, overlapping, area)
    if outcome != "cut":
        return outcome
    left = {part: [] for part in range(len(own.parts))}  # what is left of each polygon, in pieces
    changed, whole = set(), np.bincount(own.part_of, minlength=len(own.parts)) == 1
    for mine, piece in enumerate(own.polygons):
        for other in cuts.get(mine, ()):
            tick()
            piece = piece.Difference(other)
        if mine in cuts:
            changed.add(own.part_of[mine])
        left[own.part_of[mine]].extend(_polygons_of(piece))
    geometry = ogr.Geometry(ogr.wkbMultiPolygon)
    for part, pieces in left.items():
        if part not in changed:
            polygons = [own.parts[part]]
        elif len(pieces) <= 1 or whole[part]:
            polygons = pieces  # a polygon compared whole: its pieces are what is left of it
        else:  # the pieces of a cut polygon are joined again
            union = ogr.Geometry(ogr.wkbMultiPolygon)
            for piece in pieces:
                union.AddGeometry(piece)
            tick()
            polygons = _polygons_of(union.UnionCascaded())
        for polygon in polygons:
            geometry.AddGeometry(polygon)
    return _cut_off(candidate, geometry, area, same, min_object_size)


def write_merged(path: str, layer: str, target_crs, kept: list[MergedObject], tags: dict,
                 statistics: str = "fraction") -> None:
    """The merged map as one GeoPackage layer in the target CRS: each object's tile fields,
    `tile_id` and `n_tiles`; `tags` (metadata.describe_run) say how it was made."""
    _, ogr, _ = osgeo()
    from .vectorize import FIELDS, Layout, write_layer

    fields = {"tile_id": [item.result.tile_id for item in kept],
              "date": [item.result.date.date.isoformat() if item.result.date.date else None for item in kept],
              "year": [item.result.date.year for item in kept]}
    for name in FIELDS:
        if all(name in item.result.fields for item in kept):
            fields[name] = [item.result.fields[name][item.index] for item in kept]
    fields["n_tiles"] = [len(item.tiles) for item in kept]
    geometries = [item.geometry if item.geometry is not None else ogr.CreateGeometryFromWkb(
        item.result.geometries[item.index]) for item in kept]
    write_layer(path, layer, spatial_reference(target_crs), fields, geometries,
                layout=Layout(statistics=statistics, tags=tags), feature_ids=None)


def coverage_layer(layer: str) -> str:
    """The name of the layer that holds where the map `layer` could have found slumps."""
    return f"{layer}_coverage"


def write_coverage(path: str, layer: str, target_crs, tiles: list[TileResult], tags: dict) -> None:
    """Each processed tile's valid extent (in the target CRS) with its tile_id, date and year,
    as a layer added to the GeoPackage `path`: "no slump here" and "not observed here" differ."""
    _, ogr, _ = osgeo()
    from .vectorize import Layout, write_layer

    fields = {"tile_id": [tile.tile_id for tile in tiles],
              "date": [tile.date.date.isoformat() if tile.date.date else None for tile in tiles],
              "year": [tile.date.year for tile in tiles]}
    geometries = [ogr.CreateGeometryFromWkb(tile.coverage) for tile in tiles]
    write_layer(path, layer, spatial_reference(target_crs), fields, geometries, layout=Layout(tags=tags),
                feature_ids=None, add_layer=True)


def excluded_note(counts: dict) -> str:
    """', x % of its pixels in the exclusion mask' for a tile's log line ('' without a mask)."""
    if "excluded_share" not in counts:
        return ""
    return f", {100 * counts['excluded_share']:.3g} % of its pixels in the exclusion mask"


def exclusion_missed(counts: dict) -> bool:
    """Whether the exclusion polygons overlap a tile in their own CRS yet exclude none of its
    pixels (smaller than a pixel, or in another CRS than they say): worth a warning."""
    return counts.get("exclusion_overlaps", False) and counts.get("excluded_share") == 0


def merge_tiles(inputs, target_crs=DEFAULT_TARGET_CRS, *, settings: TileSettings | None = None,
                tile_outputs: str | None = None, workers: int = 1, client=None, stop_on_error: bool = False,
                progress: Progress | None = None, files: AtomicFiles | None = None) -> Region:
    """Postprocess every tile under `inputs` (see find_tiles) and merge their objects in
    `target_crs`; each tile's binarized/extent rasters and polygons go into
    `tile_outputs/<tile id>/` through `files` (an AtomicFiles the caller commits). Tiles that
    cannot be processed are skipped (listed in the result), or stop the run with
    `stop_on_error`. `progress(fraction, message)` may raise to cancel."""
    start = time.perf_counter()
    settings = (settings or TileSettings()).checked()
    target_srs = spatial_reference(target_crs)
    if target_srs is None or not target_srs.IsProjected():
        raise ValueError(f"the target CRS must be a projected CRS (got {target_crs!r})")
    if tile_outputs and files is None:
        raise ValueError("tile outputs are written through `files` (an AtomicFiles)")
    report = progress or (lambda fraction, message: None)
    looked_at = []
    sources, skipped = find_tiles(inputs, settings.subset, looked_at)
    if stop_on_error and skipped:
        raise ValueError(f"tile {skipped[0].tile_id}: {skipped[0].reason}")
    if not sources:
        raise ValueError(no_tile_found(inputs, looked_at) if not skipped else
                         f"no tile found in {inputs!r}: " + "; ".join(f"{item.tile_id}: {item.reason}"
                                                                      for item in skipped[:12]))
    if files is not None:  # outputs never replace a tile's files
        files.protect([path for source in sources for path in source.inputs])
    if tile_outputs:  # a tile's own outputs that would replace an input are refused before any tile
        for source in sources:
            for name in TILE_OUTPUTS:
                files.check(os.path.join(tile_outputs, source.tile_id, name))
    jobs = []
    for source in sources:
        outputs = None
        if tile_outputs:  # hidden files in the folder itself until the end: no half-filled tile folders
            stem = source.tile_id.replace("/", "_")
            outputs = {name: files.scratch(os.path.join(tile_outputs, f"{stem}-{name}")) for name in TILE_OUTPUTS}
        jobs.append((source, settings, target_crs, outputs))
    results, unfound = [], len(skipped)
    status = [f"Processing {len(jobs)} tiles"]
    if client is None and workers > 1:
        workers, note = worker_count(workers, sources)
        status[0] += f", up to {workers} at a time in worker processes" if workers > 1 else " in this process"
        if note:
            status[0] += f" ({note})"

    def heartbeat():
        report((len(results) + len(skipped) - unfound) / len(jobs) * 0.9, status[0])

    for result in run_tiles(jobs, workers, client, heartbeat):
        if result.outputs_failed:
            where = os.path.join(tile_outputs, result.tile_id) + os.sep
            raise OSError(f"tile {result.tile_id}: {result.error.replace('write ', 'write ' + where, 1)}")
        if result.error:
            if stop_on_error:
                raise ValueError(f"tile {result.tile_id}: {result.error}")
            skipped.append(Skipped(result.tile_id, result.error))
        else:
            results.append(result)
        status[0] = f"Tile {result.tile_id}: " + (f"skipped ({result.error})" if result.error
                                                   else f"{result.count} objects" + excluded_note(result.counts))
        heartbeat()
    if not results:
        raise ValueError(f"none of the {len(jobs)} tiles could be processed; the first: tile "
                         f"{skipped[unfound].tile_id}: {skipped[unfound].reason}")
    results.sort(key=lambda result: result.tile_id)
    report(0.9, "Merging the tiles' objects")
    kept, duplicates, clipped, groups = [], 0, 0, {}
    total, done = max(sum(result.count for result in results), 1), 0
    for key, members in grouped(results, settings.group_by):
        share = sum(member.count for member in members)
        group_kept, group_duplicates, group_clipped = merge_objects(
            members, settings.min_object_size,
            lambda fraction, message, done=done, share=share: report(0.9 + 0.1 * (done + fraction * share) / total,
                                                                     message))
        done += share
        kept += group_kept
        duplicates += group_duplicates
        clipped += group_clipped
        groups[key] = {"tiles": len(members), "features": len(group_kept), "duplicates": group_duplicates,
                       "clipped": group_clipped, "objects": sum(member.count for member in members)}
    for result in results:
        for name, written in result.written.items():
            os.replace(written, files.reserve(os.path.join(tile_outputs, result.tile_id, name)))
    record = {**settings.on_record(), "target_crs": str(target_crs), "tiles": len(results),
              "tiles_skipped": len(skipped), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return Region(results, skipped, kept, duplicates, clipped, time.perf_counter() - start, str(target_crs), record,
                  groups)


def grouped(results: list[TileResult], grouping: str) -> list[tuple[object, list[TileResult]]]:
    """[(group, its tiles)] in order (years or dates ascending, tiles without a date last):
    each group is merged on its own (GROUPINGS)."""
    groups = {}
    for result in results:
        groups.setdefault(group_key(result.date, grouping), []).append(result)
    return sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0])))


def process_tiles(inputs, output: str, target_crs=DEFAULT_TARGET_CRS, *, layer: str | None = None,
                  **options) -> Region:
    """merge_tiles (same `options`) and write the merged map into the GeoPackage `output`
    (layer `layer`, default the file's name). Every file appears at the end, or none does."""
    from .vectorize import layer_name

    with AtomicFiles() as files:
        region = merge_tiles(inputs, target_crs, files=files, **options)
        region.write(files.reserve(output), layer or layer_name(output))
    return region
