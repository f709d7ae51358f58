"""DARTS' postprocessing of one tile, from files to files (`prepare_export_files`): what
darts:prepareexport does, without QGIS.

Reads the probabilities (float 0..1 or DARTS' uint8 percent), the quality mask (none: every
pixel with a prediction counts as high quality), the ensemble members and an exclusion mask;
runs `prepare_export_thresholds`; writes the binarized and extent rasters, optionally the
masked probabilities and the objects' polygons, all together or none (AtomicFiles). Rasters
whose processing would need more memory than the memory limit (or any, with a dask scheduler)
go block by block, never whole in memory; the files are the same. What a caller shows (a
log, a report, layers to load) comes back in the summary.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np

from ..files.geotiff import read_probabilities_for_export, read_quality
from ...definitions import LONG_NAMES, Progress
from ..files.atomic import AtomicFiles
from ..kernels.checks import check_memory_limit, check_quality_level, check_threshold
from ..kernels.encodings import prediction_quality
from .settings import PostprocessSettings

# Memory of the in-memory path, per pixel: float32 probabilities read and masked, quality, extent, objects;
# each ensemble subset: its probabilities read and masked and its objects; each further threshold, per layer:
# its objects (bool) and their uint8 copy. Measured on a full tile (peak RSS growth, docs/benchmarks.md, issue
# 23): float32 probabilities in 14.3; DARTS' uint8 percent in (kept uint8) 6.0, or 12.1 with OUTPUT_PROBABILITIES
# (its float32 masked copy). The plan keeps the float figure for every input: uint8 tiles go block by block
# sooner than they would need to, never later (and MEMORY_LIMIT keeps meaning what it meant).
BYTES_PER_PIXEL = 14
SUBSET_BYTES_PER_PIXEL = 9
THRESHOLD_BYTES_PER_PIXEL = 2

NO_QUALITY = "No quality mask: every pixel with a prediction counts as high quality."


@dataclass(frozen=True)
class PrepareExportSettings(PostprocessSettings):
    """PostprocessSettings (`exclude`: polygons in any CRS or a raster on the probabilities'
    grid), and: `thresholds` (several, replacing `threshold`: one binarized raster and polygon
    file per threshold, named <stem>-t0.40<ext>), the memory limit in MB above which the
    rasters are processed block by block (None: half of the available memory), the address
    of a dask.distributed scheduler to compute the blocks on (then always block by block)
    and `parts` (polygons: one feature per 4-connected part, upstream's layout)."""

    thresholds: tuple = ()
    memory_limit_mb: float | None = None
    dask_scheduler: str | None = None
    parts: bool = False

    def checked(self) -> PrepareExportSettings:
        super().checked()
        labels = [threshold_label(check_threshold(value)) for value in self.thresholds]
        if len(set(labels)) < len(labels):
            raise ValueError(f"thresholds: {labels[next(i for i, x in enumerate(labels) if labels.count(x) > 1)]!r} "
                             f"is given twice")
        check_memory_limit(self.memory_limit_mb)
        return self


@dataclass(frozen=True)
class PrepareExportInputs:
    """The files of one tile: probabilities, a quality mask (optional) and ensemble members
    ({subset name: probabilities file}: see export.subset_names)."""

    probabilities: str
    quality: str | None = None
    subsets: dict = field(default_factory=dict)

    @property
    def paths(self) -> list[str]:
        return [self.probabilities, self.quality, *self.subsets.values()]


@dataclass(frozen=True)
class PrepareExportOutputs:
    """Where the results go: the binarized and extent GeoTIFFs, optionally the masked
    probabilities and the objects' polygons (a GeoPackage; `polygons_layer`: that layer of it,
    its other layers kept, else a new file with a layer of the file's name). With several
    thresholds, `binarized` and `polygons` only give the names of the files per threshold."""

    binarized: str
    extent: str
    probabilities: str | None = None
    polygons: str | None = None
    polygons_layer: str | None = None


@dataclass
class ThresholdRun:
    """One binarized result: its threshold (None: the settings' single threshold), its files
    and what the report and the log say of it."""

    threshold: float | None
    binarized: str
    polygons: str | None
    subsets: dict  # {subset name: binarized file}
    counts: dict = field(default_factory=dict)  # objects, removed_at_boundary, removed_too_small, ...
    kept_pixels: int = 0
    areas: np.ndarray = field(default_factory=lambda: np.zeros(0))  # of the kept objects (m², see area_note)


@dataclass
class PrepareExportSummary:
    """What prepare_export_files did: its runs (one per threshold), the files written (final
    paths), the extent's pixels, the grid, and sentences for the log (notes, warnings)."""

    runs: list
    extent: str
    probabilities: str | None
    extent_pixels: int
    grid: object
    area_note: str | None
    block: int | None  # the block side of the block-wise path; None: in memory
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    report_parameters: dict = field(default_factory=dict)  # the settings as the report lists them

    @property
    def several(self) -> bool:
        return self.runs[0].threshold is not None

    @property
    def files(self) -> list[str]:
        paths = [self.extent, *([self.probabilities] if self.probabilities else [])]
        for run in self.runs:
            paths += [run.binarized, *run.subsets.values(), *([run.polygons] if run.polygons else [])]
        return paths


def threshold_label(threshold) -> str:
    """A threshold as file names, group names and reports show it: two decimals, all the
    digits it needs when two are not enough (0.40, 0.425, 0.50000000001)."""
    label = f"{threshold:.2f}"
    return label if float(label) == threshold else repr(float(threshold))


def subset_path(binarized_path: str, name: str) -> str:
    """Where the binarized result of ensemble subset `name` goes: beside the binarized output."""
    stem, extension = os.path.splitext(binarized_path)
    return f"{stem}-{name}{extension}"


def threshold_path(path: str, threshold) -> str:
    """Where the result of one of several thresholds goes: <stem>-t0.40<extension> beside `path`."""
    stem, extension = os.path.splitext(path)
    return f"{stem}-t{threshold_label(threshold)}{extension}"


def describe_exclusion(exclusion) -> str:
    if not exclusion:
        return "(none)"
    path, layer, where = exclusion
    return path + (f", layer {layer}" if layer else "") + (f", features where {where}" if where else "")


def plan_runs(outputs: PrepareExportOutputs, settings: PrepareExportSettings, subsets=(),
              names: dict | None = None) -> list[ThresholdRun]:
    """The binarized results and their files: one for the threshold, or one per threshold of
    `thresholds`, named beside the outputs (`names`: of the polygons and thresholds in messages)."""
    said = {"polygons": "OUTPUT_POLYGONS", "thresholds": "THRESHOLDS", **(names or {})}
    names = list(subsets)
    if not settings.thresholds:
        return [ThresholdRun(None, outputs.binarized, outputs.polygons,
                             {name: subset_path(outputs.binarized, name) for name in names})]
    if outputs.polygons and outputs.polygons_layer:
        raise ValueError(f"{said['polygons']}: with {said['thresholds']}, give a GeoPackage file (one is written per "
                         f"threshold beside it), not a layer of an existing GeoPackage")
    runs = []
    for value in settings.thresholds:
        binarized = threshold_path(outputs.binarized, value)
        runs.append(ThresholdRun(value, binarized, outputs.polygons and threshold_path(outputs.polygons, value),
                                 {name: subset_path(binarized, name) for name in names}))
    return runs


def plugin_version() -> str:
    """The plugin's version (metadata.txt beside the package's modules)."""
    import configparser

    parser = configparser.ConfigParser()
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parser.read(os.path.join(package, "metadata.txt"), encoding="utf-8")
    return parser.get("general", "version", fallback="unknown")


def postprocessing_tag(step: str) -> dict:
    """The tag that names the algorithm and the plugin's version a file was written by."""
    from ..files.tags import PREFIX

    return {PREFIX + "postprocessing": f"darts:{step} (DARTS Postprocessing for QGIS {plugin_version()})"}


def step_tags(step: str, record: dict, inputs) -> dict:
    """The tags of every file a run of the algorithm `step` writes: its settings `record` under
    its parameters' names, the DARTS_* tags of the files `inputs` (None: none; where they
    disagree the most recently exported wins) and who wrote it (core.files.tags.describe_run)."""
    from ..files.tags import describe_run, inherited_tags, read_tags

    found = [read_tags(path) for path in inputs if path]
    return {**describe_run(step, record, inherited_tags(found)), **postprocessing_tag(step)}


def run_tags(inputs: PrepareExportInputs, settings: PrepareExportSettings, step: str = "prepareexport") -> dict:
    """The tags every file of the run carries, as darts:prepareexport writes them: its settings
    under its parameters' names, the DARTS_* tags of the inputs (the most recently exported
    wins) and the export date (step_tags)."""
    record = {
        "PROBABILITIES": os.path.basename(inputs.probabilities),
        "QUALITY_MASK": os.path.basename(inputs.quality) if inputs.quality else None,
        "THRESHOLD": settings.threshold,
        "THRESHOLDS": ",".join(str(value) for value in settings.thresholds),
        "MASK_EROSION_SIZE": settings.mask_erosion_size,
        "EDGE_EROSION_SIZE": settings.edge_band,
        "MIN_OBJECT_SIZE": settings.min_object_size,
        "QUALITY_LEVEL": settings.quality_level,
        "SUBSET_PROBABILITIES": ", ".join(os.path.basename(path) for path in inputs.subsets.values()) or None,
        "EXCLUDE": settings.exclude[0] if settings.exclude else "",
        "MAX_EXCLUDED_SHARE": float(settings.max_excluded_share),
        "BOUNDARY": settings.boundary,
        "SIZE_CONNECTIVITY": str(settings.size_connectivity),
        "PROBABILITY_SCALE": settings.scale,
        "STATISTICS_SCALE": settings.statistics,
    }
    return step_tags(step, record, inputs.paths)


def available_memory_mb() -> float:
    """Memory available to new work, in MB (Linux: MemAvailable; elsewhere psutil; else 4 GB)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        return psutil.virtual_memory().available / 2 ** 20
    except ImportError:
        return 4096.0


def block_plan(width: int, height: int, bytes_per_pixel: float, memory_limit_mb: float | None = None,
               dask_scheduler: str | None = None) -> tuple[int | None, str | None]:
    """(None, None) to process in memory, or (the block side, why) for the block-wise path:
    taken when the estimated need exceeds the memory limit (None: half of the available
    memory), or when a dask scheduler is given."""
    from ...dependencies import missing_for_blocks

    limit = memory_limit_mb if memory_limit_mb is not None else available_memory_mb() / 2
    need = width * height * bytes_per_pixel / 2 ** 20
    address = (dask_scheduler or "").strip()
    if need <= limit and not address:
        return None, None
    reason = ("a dask scheduler was given" if address else
              "it needs about {:.0f} MB, more than the memory limit of {:.0f} MB".format(need, limit))
    missing = missing_for_blocks(cluster=bool(address))
    if missing:
        raise ValueError(f"This run must go block by block ({reason}), which {missing}; or raise MEMORY_LIMIT.")
    from ..lazy.blockwise import block_size

    return block_size(bytes_per_pixel, limit, workers=os.cpu_count() or 1), reason


def run_blocks(build, dask_scheduler, progress, log, start, span):
    """Compute what `build(locks)` returns (dask Delayed values) on the local scheduler or the
    cluster at `dask_scheduler` (`locks(file)`: blockwise.scheduler's); their values."""
    from ..lazy.blockwise import compute, scheduler

    address = (dask_scheduler or "").strip()
    with scheduler(address) as (client, locks):
        if client is not None:
            log(f"Computing on the dask cluster at {address}", False)
        return compute(*build(locks), client=client, progress=lambda f, m: progress(start + span * f, m),
                       message="Processing blocks")


def statistics_probabilities(path: str, what: str, scale: str, block: int | None = None):
    """The probabilities raster as polygon statistics need it: DARTS' uint8 percent stays uint8
    percent (its exact values; re-deriving them from k / 100 in float32 turns 53 into 52 and
    59 into 58), float probabilities stay float. Block by block for a `block` size."""
    if block:
        from ..lazy.blockwise import read_probabilities_for_export_lazy

        return read_probabilities_for_export_lazy(path, what, block, scale)
    return read_probabilities_for_export(path, what, scale)


def _as_uint8(binarized):
    """A binarized result as uint8 0/1 for writing: an in-memory bool array's own bytes (a
    view, no copy), a lazy one converted block by block."""
    if isinstance(binarized, np.ndarray) and binarized.dtype == bool:
        return binarized.view(np.uint8)
    return binarized.astype("uint8")


# -- the pipeline -----------------------------------------------------------------------------
def prepare_export_files(inputs: PrepareExportInputs, outputs: PrepareExportOutputs,
                         settings: PrepareExportSettings | None = None, progress: Progress | None = None, *,
                         files: AtomicFiles | None = None, tags: dict | None = None, log=None,
                         names: dict | None = None) -> PrepareExportSummary:
    """DARTS' postprocessing of the tile `inputs` into the files `outputs` with `settings`.

    `progress(fraction, message)` is called along the way and may raise to cancel (nothing
    is written then). `files`: an AtomicFiles the caller commits (with files of its own, e.g.
    a report); without it the outputs are committed here when all are written. `tags`: the
    files' metadata (default: run_tags). `log(sentence, warning)` receives the notes and
    warnings as they come (they are in the summary too). `names` ({"probabilities": ...,
    "quality": ..., "subsets": ..., "exclude": ...}) names the inputs in messages (default:
    PROBABILITIES, QUALITY_MASK, SUBSET_PROBABILITIES, EXCLUDE, as the algorithm's parameters).
    """
    settings = (settings or PrepareExportSettings()).checked()
    names = {"probabilities": "PROBABILITIES", "quality": "QUALITY_MASK", "subsets": "SUBSET_PROBABILITIES",
             "exclude": "EXCLUDE", "binarized": "OUTPUT_BINARIZED", "scale": "PROBABILITY_SCALE", **(names or {})}
    report = progress or (lambda fraction, message: None)
    return run_on_files(lambda files, say: _run(inputs, outputs, settings, report, files, tags, say, names),
                        inputs.paths + [settings.exclude[0] if settings.exclude else None], files, log)


def run_on_files(run, inputs, files=None, log=None):
    """What a pipeline on files shares: `run(files, say)` writes into `files` (or, when None, an
    AtomicFiles of its own that protects `inputs`, committed when the run succeeds and discarded
    otherwise), `say(sentence, warning=False)` collects its notes and warnings (and passes each on
    to `log(sentence, warning)`); the summary `run` returns, with its notes and warnings set."""
    notes, warnings = [], []

    def say(sentence, warning=False):
        (warnings if warning else notes).append(sentence)
        if log is not None:
            log(sentence, warning)

    own = files is None
    if own:
        files = AtomicFiles(inputs)
    try:
        summary = run(files, say)
        summary.notes, summary.warnings = notes, warnings
        if own:
            files.commit()
        return summary
    except BaseException:
        if own:
            files.discard()
        raise


def _run(inputs, outputs, settings, report, files, tags, say, names):
    from ..files.geotiff import GeoTiffWindows, percent_scale_doubt, probability_scale_of, write_geotiff
    from ..files.grids import check_same_grid, grid_of
    from ..files.tags import postprocessed_again
    from .api import prepare_export_thresholds

    scale = settings.scale
    what = names["probabilities"]
    runs = plan_runs(outputs, settings, inputs.subsets, names)
    several = runs[0].threshold is not None
    tags = run_tags(inputs, settings) if tags is None else tags
    scratch_folder = os.path.dirname(os.path.abspath(outputs.binarized))

    report(0.0, "Reading and checking the rasters")
    grid = grid_of(inputs.probabilities, what)
    probability_scale = probability_scale_of(inputs.probabilities, what, scale)
    doubt = percent_scale_doubt(inputs.probabilities, what, scale)
    if doubt:
        say(doubt, True)
    for name, path in inputs.subsets.items():
        if probability_scale_of(path, f"{names['subsets']} '{name}'", scale) != probability_scale:
            raise ValueError(f"{names['subsets']} '{name}' is read as a different probability scale than "
                             f"{what} ({probability_scale}): give ensemble members of the same "
                             f"kind, or set {names['scale']}")
    again = postprocessed_again(inputs.probabilities)
    if again:
        say(again, True)
    exclusion = settings.exclude
    per_pixel = (BYTES_PER_PIXEL + SUBSET_BYTES_PER_PIXEL * len(inputs.subsets) + (1 if exclusion else 0)
                 + THRESHOLD_BYTES_PER_PIXEL * (len(runs) - 1) * (1 + len(inputs.subsets)))
    block, reason = block_plan(grid.width, grid.height, per_pixel, settings.memory_limit_mb, settings.dask_scheduler)
    # DARTS' uint8 percent stays uint8 as stored (read_probabilities_for_export), in memory and in
    # blocks: the core thresholds it in uint8 and the statistics decode it object by object, so no
    # float32 copy is made unless OUTPUT_PROBABILITIES asks for the masked probabilities.
    reader, quality_reader = read_probabilities_for_export, read_quality
    if block:
        from ..lazy.blockwise import read_probabilities_for_export_lazy, read_quality_lazy

        say(f"Processing in blocks of {block} x {block} pixels: {reason}.")
        reader = functools.partial(read_probabilities_for_export_lazy, block=block)
        quality_reader = functools.partial(read_quality_lazy, block=block)
    tile = {"probabilities": reader(inputs.probabilities, what, scale=scale)}
    options = dict(mask_erosion_size=settings.mask_erosion_size, edge_erosion_size=settings.edge_erosion_size,
                   min_object_size=settings.min_object_size, quality_level=settings.quality_level,
                   boundary=settings.boundary, size_connectivity=settings.size_connectivity,
                   max_excluded_share=settings.max_excluded_share)
    core_options = dict(options)
    if inputs.quality:
        check_same_grid(what, grid, names["quality"], grid_of(inputs.quality, names["quality"]))
        level = check_quality_level(settings.quality_level)
        if block and level > 0:
            # prepare_export is erode_mask, then binarize on the eroded mask: in blocks the mask
            # is eroded as it is read (each block's window once, with the erosion's halo), and
            # the core gets that 0/1 mask as the quality with nothing left to erode.
            from ..lazy.blockwise import read_eroded_quality_lazy

            tile["quality_data_mask"] = read_eroded_quality_lazy(inputs.quality, names["quality"], block, level,
                                                                 settings.mask_erosion_size, settings.edge_band)
            core_options.update(quality_level=1, mask_erosion_size=0, edge_erosion_size=0)
        else:
            tile["quality_data_mask"] = quality_reader(inputs.quality, names["quality"])
    else:
        say(NO_QUALITY)
        tile["quality_data_mask"] = prediction_quality(tile["probabilities"])
    for name, path in inputs.subsets.items():
        member = f"{names['subsets']} '{name}'"
        check_same_grid(what, grid, member, grid_of(path, member))
        tile[f"probabilities-{name}"] = reader(path, member, scale=scale)
    exclude = read_exclusion(exclusion, grid, block, files, scratch_folder, say, names["exclude"])
    report(0.1, "Reading and checking the rasters")

    thresholds = [settings.threshold] if not several else [run.threshold for run in runs]
    object_counts = {}
    by_threshold = prepare_export_thresholds(
        tile, thresholds, **core_options, ensemble_subsets=list(inputs.subsets), device=settings.device, exclude=exclude,
        progress=lambda f, m: report(0.1 + 0.5 * f, m), object_counts=object_counts,
        probability_scale=probability_scale, masked_probabilities=bool(outputs.probabilities))
    results = [by_threshold[threshold] for threshold in thresholds]
    counts = [object_counts[threshold]["binarized_segmentation"] for threshold in thresholds]
    lazy_probabilities = tile["probabilities"] if block else None  # read again for polygon statistics
    del tile, by_threshold  # in memory: frees the probabilities read (unless the results hold them unmasked)

    report(0.6, "Writing the outputs")
    first = results[0]  # the extent and masked probabilities are the same for every threshold
    descriptions = {outputs.extent: LONG_NAMES["extent"]}
    rasters = {outputs.extent: (first["extent"], None)}
    if outputs.probabilities:
        rasters[outputs.probabilities] = (first["probabilities"], float("nan"))
        descriptions[outputs.probabilities] = LONG_NAMES["probabilities"]
    for run, result in zip(runs, results):
        rasters[run.binarized] = (_as_uint8(result["binarized_segmentation"]), None)
        descriptions[run.binarized] = LONG_NAMES["binarized"]
        for name, path in run.subsets.items():
            rasters[path] = (_as_uint8(result[f"binarized_segmentation-{name}"]), None)
            descriptions[path] = LONG_NAMES["binarized"]
    kept = [result["binarized_segmentation"].sum() for result in results]
    stored = {}
    if block:
        from ..lazy.blockwise import any_prediction, require_prediction, store

        small = [counts, first["extent"].sum(), any_prediction(lazy_probabilities), *kept]  # computed with the writes

        def write_blocks(locks):
            targets = {path: GeoTiffWindows(files.reserve(path), array.shape, array.dtype, grid.transform_to_write,
                                            grid.crs, nodata, "DEFLATE", tags, descriptions.get(path))
                       for path, (array, nodata) in rasters.items()}
            stored.update({path: target.path for path, target in targets.items()})
            return [store({path: array for path, (array, _) in rasters.items()}, targets, locks), *small]

        _, counts, extent_pixels, has_prediction, *kept = run_blocks(write_blocks, settings.dask_scheduler, report,
                                                                     say, 0.1, 0.88)
        require_prediction(has_prediction, what)
        if several:
            _tag_thresholds([(files.reserved(run.binarized), run.threshold) for run in runs])
        writing = None
    else:
        # The rasters are written (and read back) in a thread of their own while this one traces
        # the polygons: GDAL's compression and tracing release the GIL, so the two overlap on two
        # cores. Each file is written as before, on its own; joined before anything is committed.
        report(0.6, "Writing the outputs")
        reserved = {path: (files.reserve(path), array, nodata) for path, (array, nodata) in rasters.items()}
        tagged = [(files.reserved(run.binarized), run.threshold) for run in runs] if several else []

        def write_rasters():
            for path, (target, array, nodata) in reserved.items():
                write_geotiff(target, array, grid.transform_to_write, grid.crs, nodata, tags=tags,
                              description=descriptions.get(path))
            _tag_thresholds(tagged)

        writing = _Background(write_rasters)
        extent_pixels = first["extent"].sum()
    try:
        summary = _polygons_and_summary(inputs, outputs, settings, report, files, tags, say, names, runs, results,
                                        counts, kept, block, stored, lazy_probabilities, grid, extent_pixels,
                                        exclusion, options, thresholds)
    except BaseException:
        if writing is not None:
            writing.join(raise_error=False)  # nothing is discarded while it is being written
        raise
    if writing is not None:
        writing.join()  # raises what the writes raised
    return summary


def _tag_thresholds(files):
    """Each binarized file ((path, threshold)) its own threshold under DARTS' key, replacing the
    run's THRESHOLD."""
    from ..files.tags import PREFIX, UPSTREAM_KEYS, write_metadata

    for path, threshold in files:
        write_metadata(path, {PREFIX + UPSTREAM_KEYS["threshold"]: threshold_label(threshold)})


class _Background:
    """`function()` run in a thread from now on; `join()` waits for it and raises what it raised."""

    def __init__(self, function):
        import threading

        self.error = None

        def run():
            try:
                function()
            except BaseException as error:  # noqa: BLE001 (raised again by join)
                self.error = error

        self.thread = threading.Thread(target=run, name="writing rasters", daemon=True)
        self.thread.start()

    def join(self, raise_error: bool = True):
        self.thread.join()
        if self.error is not None and raise_error:
            error, self.error = self.error, None
            raise error


def _polygons_and_summary(inputs, outputs, settings, report, files, tags, say, names, runs, results, counts, kept,
                          block, stored, lazy_probabilities, grid, extent_pixels, exclusion, options, thresholds):
    """The polygons of each run, the objects' areas and the summary (_run's second half)."""
    several = runs[0].threshold is not None
    what = names["probabilities"]
    scale = settings.scale
    first = results[0]

    note = grid.area_note()
    if note:
        say(note, True)
    binaries, labelled = [], []  # labelled: each in-memory binary's Objects, for its polygons and areas
    # The polygons' statistics: the probabilities are the same inside objects whether masked or not (in
    # memory they are masked only for OUTPUT_PROBABILITIES: prepare_export's masked_probabilities).
    values = lazy_probabilities if block else first["probabilities"]  # uint8 percent kept as stored
    if (any(run.polygons for run in runs) and settings.statistics == "percent"  # DARTS' percent input as it is
            and values.dtype != np.uint8):
        values = statistics_probabilities(inputs.probabilities, what, scale, block)
    for index, (run, result) in enumerate(zip(runs, results)):
        if block:
            # Objects and their areas from the binarized raster just written, read back block by
            # block; their statistics from the probabilities (the same inside objects as masked).
            from ..lazy.blockwise import read_binary_lazy

            binaries.append(read_binary_lazy(stored[run.binarized], names["binarized"], block))
        else:
            from ..kernels.objects import Objects

            binaries.append(result["binarized_segmentation"])
        labelled.append(None if block else Objects(binaries[-1]))
        if run.polygons:
            start, span = 0.75 + 0.2 * index / len(runs), 0.2 / len(runs)
            write_polygons(run.polygons, outputs.polygons_layer, files, binaries[-1], grid, values, settings, tags,
                            block, lambda f, m, s=start, w=span: report(s + w * f, m), say, labelled[-1])
            if several:
                from ..files.tags import PREFIX, UPSTREAM_KEYS, write_metadata

                write_metadata(files.reserved(run.polygons), {PREFIX + UPSTREAM_KEYS["threshold"]:
                                                              threshold_label(run.threshold)})
    del results, first, values, lazy_probabilities

    from .polygons import object_areas

    areas = [object_areas(binary, grid.geotransform, grid.crs, objects) for binary, objects in zip(binaries, labelled)]
    del labelled
    if block:
        areas = list(run_blocks(lambda locks: areas, settings.dask_scheduler, report, say, 0.95, 0.04))
    for run, count, pixels, objects_areas in zip(runs, counts, kept, areas):
        run.counts, run.kept_pixels, run.areas = count, int(pixels), objects_areas
    parameters = {"probabilities": inputs.probabilities,
                  "quality mask": inputs.quality or "(none: every pixel with a prediction counts as high quality)",
                  "probability scale": scale, "exclusion mask": describe_exclusion(exclusion)}
    if several:
        parameters.update({key: value for key, value in options.items()},
                          thresholds=", ".join(threshold_label(t) for t in thresholds))
    else:
        parameters.update(bin_threshold=settings.threshold, **options)
    return PrepareExportSummary(runs, outputs.extent, outputs.probabilities, int(extent_pixels), grid, note, block,
                                report_parameters=parameters)


def read_exclusion(exclusion, grid, block, files, scratch_folder, say, what):
    """The exclusion mask on the probabilities' grid (lazy block by block), or None."""
    if not exclusion:
        return None
    from ..files.exclusion import exclusion_mask, polygons_without_crs

    path, layer, where = exclusion
    say(f"Exclusion mask: {describe_exclusion(exclusion)}")
    if polygons_without_crs(path, layer):
        say(f"{what}: the polygons have no CRS; they are taken to be in the raster's CRS", True)
    shape, options = (grid.height, grid.width), dict(layer=layer, where=where, what=what)
    if block:
        from ..lazy.blockwise import exclusion_mask_lazy

        return exclusion_mask_lazy(path, shape, grid.transform_to_write, grid.crs, block,
                                   files.scratch(os.path.join(scratch_folder, "exclusion.tif")), **options)
    return exclusion_mask(path, shape, grid.transform_to_write, grid.crs, **options)


def write_polygons(path, layer, files, binary, grid, values, settings, tags, block, report, say, objects=None):
    """Polygonize `binary` into the GeoPackage `path` (a layer of the file's name, or `layer`
    of that file, its other layers kept), through `files`; the number of objects. A lazy
    `binary` (`block` given) goes block by block. `settings`: any with statistics, parts and
    dask_scheduler (prepareexport's, polygonize's). `objects`: the Objects of an in-memory
    `binary`, labelled already."""
    from ..files.atomic import into_geopackage
    from ..files.layers import Layout
    from .polygons import polygonize

    layout = Layout(statistics=settings.statistics, parts=settings.parts, tags=tags)

    def polygonize_into(file, name):
        if not block:
            return polygonize(binary, grid.geotransform, grid.crs, file, layer=name, probabilities=values,
                              progress=report, layout=layout, objects=objects)
        from ..lazy.chunked_polygons import polygonize_lazy  # into the run's own temporary file

        return run_blocks(lambda locks: [polygonize_lazy(binary, grid.geotransform, grid.crs, file, name, values,
                                                         locks(file), layout)], settings.dask_scheduler,
                          lambda f, m: report(f, m), say, 0.0, 1.0)[0]

    return into_geopackage(files, path, layer, polygonize_into)
