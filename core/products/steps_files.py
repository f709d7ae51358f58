"""The modeler's single steps from files to a file, without QGIS: darts:erodemask
(`erode_mask_files`), darts:binarize (`binarize_files`) and darts:qualitymask
(`quality_mask_files`).

Each reads and checks its rasters, then works in memory or, when that would need more memory
than the memory limit (or any, with a dask scheduler), block by block through GeoTIFF windows
(erodemask, binarize): the same file either way, written through AtomicFiles (all or nothing).
The algorithms and the command line both run these; what a caller shows (a log, a layer to
load) comes back in the summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...definitions import LONG_NAMES, PROBABILITY_SCALES, QUALITY_LEVELS, QUALITY_SOURCES, Progress
from ..files.atomic import AtomicFiles
from ..kernels.checks import check_choice, check_memory_limit, check_size
from .prepare_export_files import block_plan, run_blocks, run_on_files, step_tags

# Memory of the in-memory paths, per pixel.
ERODE_BYTES_PER_PIXEL = 4  # the mask, its validity, the eroded copy and the output
BINARIZE_BYTES_PER_PIXEL = 8  # float32 probabilities, the mask, the objects and the output


@dataclass(frozen=True)
class ErodeMaskSettings:
    """Which quality level is valid before the erosion (QUALITY_LEVELS), the erosion's disk
    radius `size`, the edge band (None: `size`; 0: none), the device of the in-memory path,
    the memory limit in MB above which the raster goes block by block (None: half of the
    available memory) and a dask.distributed scheduler to compute the blocks on (then always
    block by block); named and defaulted as darts:erodemask's parameters."""

    quality_level: str = "low_quality"
    size: int = 10
    edge_size: int | None = None
    device: str = "auto"
    memory_limit_mb: float | None = None
    dask_scheduler: str | None = None

    def checked(self) -> ErodeMaskSettings:
        check_choice("quality level", self.quality_level, QUALITY_LEVELS)
        check_size("size", self.size)
        if self.edge_size is not None:
            check_size("edge_size", self.edge_size)
        check_memory_limit(self.memory_limit_mb)
        return self

    @property
    def edge_band(self) -> int:
        """The width of the edge band actually used."""
        return self.size if self.edge_size is None else self.edge_size


@dataclass(frozen=True)
class BinarizeSettings:
    """The threshold, the smallest object kept (pixels, counted with `size_connectivity`), the
    device of the in-memory path, how the probabilities are read (`scale`: PROBABILITY_SCALES),
    the memory limit in MB and a dask scheduler (as ErodeMaskSettings); named and defaulted as
    darts:binarize's parameters."""

    threshold: float = 0.5
    min_object_size: int = 32
    size_connectivity: int = 8
    device: str = "auto"
    scale: str = "auto"
    memory_limit_mb: float | None = None
    dask_scheduler: str | None = None

    def checked(self) -> BinarizeSettings:
        check_choice("probability scale", self.scale, PROBABILITY_SCALES)
        check_memory_limit(self.memory_limit_mb)
        return self


@dataclass(frozen=True)
class QualityMaskSettings:
    """What the input raster is (`source`: QUALITY_SOURCES); darts:qualitymask's parameter."""

    source: str = "scl"

    def checked(self) -> QualityMaskSettings:
        check_choice("source", self.source, QUALITY_SOURCES)
        return self


@dataclass
class StepSummary:
    """What a step did: the file written (final path), the grid, the block side (None: in
    memory), `counts` (qualitymask: pixels per quality 0, 1, 2) and sentences for the log."""

    output: str
    grid: object
    block: int | None = None
    counts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def named(path: str | None) -> str | None:
    return os.path.basename(path) if path else None


def _lazy_or_memory(grid, bytes_per_pixel, settings, say):
    """The block side of the block-wise path (said in the log), or None to work in memory."""
    block, reason = block_plan(grid.width, grid.height, bytes_per_pixel, settings.memory_limit_mb,
                               settings.dask_scheduler)
    if block:
        say(f"Processing in blocks of {block} x {block} pixels: {reason}.")
    return block


def _store(files, output, array, grid, tags, description, settings, report, say, small=()):
    """Write the lazy `array` window by window into `output` through `files`, computing the
    dask values `small` with it; their values."""
    from ..files.geotiff import GeoTiffWindows
    from ..lazy.blockwise import store

    def build(locks):
        target = GeoTiffWindows(files.reserve(output), array.shape, array.dtype, grid.transform_to_write, grid.crs,
                                None, "DEFLATE", tags, description)
        return [store({output: array}, {output: target}, locks), *small]

    return run_blocks(build, settings.dask_scheduler, report, say, 0.05, 0.9)[1:]


def _write(files, output, array, grid, tags, description):
    from ..files.geotiff import write_geotiff

    write_geotiff(files.reserve(output), array, grid.transform_to_write, grid.crs, None, tags=tags,
                  description=description)


# -- darts:erodemask ----------------------------------------------------------------------------
def erode_mask_files(mask: str, output: str, settings: ErodeMaskSettings | None = None,
                     progress: Progress | None = None, *, files: AtomicFiles | None = None, tags: dict | None = None,
                     description: str | None = LONG_NAMES["extent"], log=None,
                     names: dict | None = None) -> StepSummary:
    """The valid area of the quality mask `mask` (pixels of at least the quality level),
    eroded and cut off at the edges, as uint8 0/1 into the GeoTIFF `output`.

    `progress(fraction, message)` is called along the way and may raise to cancel (nothing is
    written then). `files`: an AtomicFiles the caller commits; without it the output is
    committed here. `tags`: the file's metadata (default: as darts:erodemask writes them);
    `description`: its band's. `log(sentence, warning)` receives the notes and warnings as they
    come. `names` ({"mask": ...}) names the input in messages (default: MASK)."""
    settings = (settings or ErodeMaskSettings()).checked()
    names = {"mask": "MASK", **(names or {})}
    report = progress or (lambda fraction, message: None)
    if tags is None:
        tags = step_tags("erodemask", {"MASK": named(mask), "QUALITY_LEVEL": settings.quality_level,
                                       "SIZE": settings.size, "EDGE_SIZE": settings.edge_size}, [mask])
    return run_on_files(lambda files, say: _erode(mask, output, settings, report, files, tags, description, say,
                                                  names), [mask], files, log)


def _erode(mask, output, settings, report, files, tags, description, say, names):
    from ..files.grids import grid_of
    from ..kernels.checks import QUALITY_LEVELS as LEVELS
    from .api import erode_mask

    grid = grid_of(mask, names["mask"])
    level = LEVELS[settings.quality_level]
    block = _lazy_or_memory(grid, ERODE_BYTES_PER_PIXEL, settings, say)
    if block:
        from ..lazy.blockwise import read_eroded_quality_lazy

        eroded = read_eroded_quality_lazy(mask, names["mask"], block, level, settings.size, settings.edge_band)
        _store(files, output, eroded, grid, tags, description, settings, report, say)
    else:
        from ..files.geotiff import read_quality

        quality = read_quality(mask, names["mask"])
        report(0.2, "Eroding the mask")
        eroded = erode_mask(quality >= level, settings.size, settings.device, edge_size=settings.edge_size)
        report(0.8, "Writing the output")
        _write(files, output, eroded, grid, tags, description)
    return StepSummary(output, grid, block)


# -- darts:binarize -----------------------------------------------------------------------------
def binarize_files(probabilities: str, output: str, mask: str | None = None, settings: BinarizeSettings | None = None,
                   progress: Progress | None = None, *, files: AtomicFiles | None = None, tags: dict | None = None,
                   description: str | None = LONG_NAMES["binarized"], log=None,
                   names: dict | None = None) -> StepSummary:
    """The objects of the probabilities raster `probabilities` (above the threshold, none
    touching a 0 of `mask`, none smaller than the minimum size) as uint8 0/1 into the GeoTIFF
    `output`; `mask` (same grid) None: no object is removed for it.

    `progress`, `files`, `tags` (default: as darts:binarize writes them), `description`, `log`:
    as erode_mask_files. `names` ({"probabilities": ..., "mask": ...}) names the inputs in
    messages (default: PROBABILITIES, MASK)."""
    settings = (settings or BinarizeSettings()).checked()
    names = {"probabilities": "PROBABILITIES", "mask": "MASK", **(names or {})}
    report = progress or (lambda fraction, message: None)
    if tags is None:
        tags = step_tags("binarize", {"PROBABILITIES": named(probabilities), "MASK": named(mask),
                                      "THRESHOLD": float(settings.threshold),
                                      "MIN_OBJECT_SIZE": settings.min_object_size,
                                      "SIZE_CONNECTIVITY": str(settings.size_connectivity),
                                      "PROBABILITY_SCALE": settings.scale}, [probabilities, mask])
    return run_on_files(lambda files, say: _binarize(probabilities, output, mask, settings, report, files, tags,
                                                     description, say, names), [probabilities, mask], files, log)


def _binarize(probabilities, output, mask, settings, report, files, tags, description, say, names):
    from ..files.geotiff import percent_scale_doubt, probability_scale_of
    from ..files.grids import check_same_grid, grid_of
    from .api import binarize

    what, scale = names["probabilities"], settings.scale
    grid = grid_of(probabilities, what)
    probability_scale = probability_scale_of(probabilities, what, scale)
    doubt = percent_scale_doubt(probabilities, what, scale)
    if doubt:
        say(doubt, True)
    if mask:
        check_same_grid(what, grid, names["mask"], grid_of(mask, names["mask"]))
    options = dict(size_connectivity=int(settings.size_connectivity), probability_scale=probability_scale)
    block = _lazy_or_memory(grid, BINARIZE_BYTES_PER_PIXEL, settings, say)
    if block:
        import dask.array as da

        from ..lazy.blockwise import any_prediction, read_probabilities_lazy, read_quality_lazy, require_prediction

        values = read_probabilities_lazy(probabilities, what, block, scale)
        valid = (read_quality_lazy(mask, names["mask"], block) if mask
                 else da.ones(values.shape, dtype=np.uint8, chunks=values.chunks))
        objects = binarize(values, settings.threshold, settings.min_object_size, valid, **options)
        has_prediction, = _store(files, output, objects.astype(np.uint8), grid, tags, description, settings, report,
                                 say, [any_prediction(values)])
        require_prediction(has_prediction, what)
    else:
        from ..files.geotiff import read_probabilities, read_quality

        values = read_probabilities(probabilities, what, scale)
        valid = read_quality(mask, names["mask"]) if mask else np.ones(values.shape, np.uint8)
        report(0.2, "Binarizing")
        objects = binarize(values, settings.threshold, settings.min_object_size, valid, settings.device, **options)
        report(0.8, "Writing the output")
        _write(files, output, objects.astype(np.uint8), grid, tags, description)
    return StepSummary(output, grid, block)


# -- darts:qualitymask --------------------------------------------------------------------------
def quality_mask_files(raster: str, output: str, settings: QualityMaskSettings | None = None,
                       progress: Progress | None = None, *, files: AtomicFiles | None = None,
                       tags: dict | None = None, description: str | None = LONG_NAMES["quality"], log=None,
                       names: dict | None = None) -> StepSummary:
    """A DARTS quality mask (uint8 0 invalid, 1 low, 2 high quality) from `raster` (an SCL
    band, a Planet UDM2 or observation counts: settings.source) into the GeoTIFF `output`, on
    the input's grid; the summary counts its pixels per quality.

    `progress`, `files`, `tags` (default: as darts:qualitymask writes them), `description`,
    `log`: as erode_mask_files. `names` ({"input": ...}) names the input in messages (default:
    INPUT)."""
    settings = (settings or QualityMaskSettings()).checked()
    names = {"input": "INPUT", **(names or {})}
    report = progress or (lambda fraction, message: None)
    if tags is None:
        tags = step_tags("qualitymask", {"INPUT": named(raster), "SOURCE": settings.source}, [raster])
    return run_on_files(lambda files, say: _quality(raster, output, settings, report, files, tags, description, say,
                                                    names), [raster], files, log)


def _quality(raster, output, settings, report, files, tags, description, say, names):
    from ..files.geotiff import read_band, read_bands
    from ..files.grids import grid_of
    from ..kernels.quality import UDM2_UNUSABLE_BAND, quality_mask

    what = names["input"]
    grid = grid_of(raster, what)
    if settings.source == "udm2":
        data = read_bands(raster, what, UDM2_UNUSABLE_BAND)
    else:
        data, nodata = read_band(raster, what)
        if nodata is not None:
            data = data.copy()
            data[data == nodata] = 0  # nodata: SCL class 0 (no data), or no observation
    report(0.4, "Making the quality mask")
    try:
        quality = quality_mask(settings.source, data)
    except (ValueError, TypeError) as error:  # data the source cannot hold: name the input
        raise ValueError(f"{what} ({raster}): {error}") from None
    _write(files, output, quality, grid, tags, description)
    counts = {value: int((quality == value).sum()) for value in range(3)}
    say("Invalid: {} pixels, low quality: {}, high quality: {}.".format(*counts.values()))
    report(1.0, "Quality mask written")
    return StepSummary(output, grid, counts=counts)
