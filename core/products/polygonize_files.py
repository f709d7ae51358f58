"""darts:polygonize from files to a file (`polygonize_files`): every 8-connected object of a
binarized raster as one polygon feature of a GeoPackage, with the probabilities' statistics
inside it, without QGIS.

Checks the grids, warns of doubtful percent probabilities and of areas that cannot be in m²,
then polygonizes in memory or, when that would need more memory than the memory limit (or
any, with a dask scheduler), block by block: the same file either way. The algorithm and the
command line both run this; what a caller shows (a log, a layer to load) comes back in the
summary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ...definitions import PROBABILITY_SCALES, STATISTICS_SCALES, Progress
from ..files.atomic import AtomicFiles
from ..kernels.checks import check_choice, check_memory_limit
from .prepare_export_files import block_plan, run_on_files, statistics_probabilities, step_tags, write_polygons

# Memory of the in-memory path, per pixel: the binary raster, float32 probabilities, labels, traced pixels.
BYTES_PER_PIXEL = 12


@dataclass(frozen=True)
class PolygonizeSettings:
    """How the probabilities are read (`scale`: PROBABILITY_SCALES), the statistics' scale
    (STATISTICS_SCALES), `parts` (one feature per 4-connected part, upstream's layout), the
    memory limit in MB above which the rasters go block by block (None: half of the available
    memory) and the address of a dask.distributed scheduler to compute the blocks on (then
    always block by block); named and defaulted as darts:polygonize's parameters."""

    scale: str = "auto"
    statistics: str = "fraction"
    parts: bool = False
    memory_limit_mb: float | None = None
    dask_scheduler: str | None = None

    def checked(self) -> PolygonizeSettings:
        check_choice("probability scale", self.scale, PROBABILITY_SCALES)
        check_choice("statistics", self.statistics, STATISTICS_SCALES)
        check_memory_limit(self.memory_limit_mb)
        return self


@dataclass
class PolygonizeSummary:
    """What polygonize_files did: the file written (final path), its number of objects, the
    grid, the area note, the block side (None: in memory) and sentences for the log."""

    output: str
    count: int
    grid: object
    area_note: str | None
    block: int | None
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def run_tags(binarized: str, probabilities: str | None, settings: PolygonizeSettings) -> dict:
    """The tags of the GeoPackage, as darts:polygonize writes them: its settings under its
    parameters' names, the DARTS_* tags of the rasters (the most recently exported wins) and
    who wrote it (step_tags)."""
    record = {
        "BINARIZED": os.path.basename(binarized),
        "PROBABILITIES": os.path.basename(probabilities) if probabilities else None,
        "PROBABILITY_SCALE": settings.scale,
        "STATISTICS_SCALE": settings.statistics,
        "POLYGON_LAYOUT": "parts" if settings.parts else "objects",
    }
    return step_tags("polygonize", record, [binarized, probabilities])


def polygonize_files(binarized: str, output: str, probabilities: str | None = None,
                     settings: PolygonizeSettings | None = None, progress: Progress | None = None, *,
                     layer: str | None = None, files: AtomicFiles | None = None, tags: dict | None = None,
                     log=None, names: dict | None = None) -> PolygonizeSummary:
    """Polygonize the objects of the 0/1 raster `binarized` into the GeoPackage `output` (a
    layer of the file's name, or `layer` of that file, its other layers kept), with the
    statistics of `probabilities` (same grid) inside each object.

    `progress(fraction, message)` is called along the way and may raise to cancel (nothing is
    written then). `files`: an AtomicFiles the caller commits; without it the output is
    committed here when written. `tags`: the file's metadata (default: run_tags). `log(sentence,
    warning)` receives the notes and warnings as they come (they are in the summary too).
    `names` ({"binarized": ..., "probabilities": ...}) names the inputs in messages (default:
    BINARIZED, PROBABILITIES, as the algorithm's parameters).
    """
    settings = (settings or PolygonizeSettings()).checked()
    names = {"binarized": "BINARIZED", "probabilities": "PROBABILITIES", **(names or {})}
    report = progress or (lambda fraction, message: None)
    return run_on_files(lambda files, say: _run(binarized, output, probabilities, settings, report, layer, files,
                                                tags, say, names), [binarized, probabilities], files, log)


def _run(binarized, output, probabilities, settings, report, layer, files, tags, say, names):
    from ..files.geotiff import percent_scale_doubt
    from ..files.grids import check_same_grid, grid_of

    report(0.0, "Reading the rasters")
    grid = grid_of(binarized, names["binarized"])
    if probabilities:
        check_same_grid(names["binarized"], grid, names["probabilities"], grid_of(probabilities, names["probabilities"]))
        doubt = percent_scale_doubt(probabilities, names["probabilities"], settings.scale)
        if doubt:
            say(doubt, True)
    note = grid.area_note()
    if note:
        say(note, True)
    tags = run_tags(binarized, probabilities, settings) if tags is None else tags
    block, reason = block_plan(grid.width, grid.height, BYTES_PER_PIXEL, settings.memory_limit_mb,
                               settings.dask_scheduler)
    if block:
        from ..lazy.blockwise import read_binary_lazy

        say(f"Processing in blocks of {block} x {block} pixels: {reason}.")
        binary = read_binary_lazy(binarized, names["binarized"], block)
    else:
        from ..files.geotiff import read_band
        from ..kernels.encodings import decode_binary

        binary = decode_binary(*read_band(binarized, names["binarized"]), names["binarized"])
    values = (statistics_probabilities(probabilities, names["probabilities"], settings.scale, block)
              if probabilities else None)
    report(0.05, "Polygonizing")
    count = write_polygons(output, layer, files, binary, grid, values, settings, tags, block,
                           lambda f, m: report(0.05 + (0.9 if block else 0.95) * f, m), say)
    say(f"{count} objects polygonized.")
    return PolygonizeSummary(output, int(count), grid, note, block)
