"""darts:evaluate from files to files (`evaluate_files`): what the algorithm and the command
line run, without QGIS.

Reads one probabilities raster (with its quality mask, or an extent used as given, or
neither: every pixel with a prediction counts as high quality) or several tiles (a folder or
tiles' probabilities files, read as processtiles reads them), burns the reference slumps on
their grid, sweeps thresholds x minimum sizes (evaluate.py holds the rules and the scores),
and writes the table (CSV), the best setting's false positives and missed slumps
(GeoPackages) and an HTML report, all together or none. What a caller shows (the log, the
best setting, layers to load) comes back in the summary.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np

from ...definitions import SCORES, Progress
from ..files.atomic import AtomicFiles, into_geopackage
from ..kernels.checks import check_choice
from ..products.prepare_export_files import describe_exclusion, read_exclusion, run_on_files, threshold_label
from ..products.settings import PostprocessSettings
from .evaluate import DEFAULT_MIN_IOU, best_line, check_min_iou, check_sweep

TITLE = "DARTS evaluation against reference slumps"  # the report's title (the algorithm translates it)
NO_QUALITY = "No quality mask: every pixel with a prediction counts as high quality."
EXTENT_AS_GIVEN = "Extent given: used as it is (no erosion, no edge band)."


@dataclass(frozen=True)
class EvaluateSettings(PostprocessSettings):
    """PostprocessSettings (as prepareexport's; tiles are read as processtiles reads them) and
    the sweep: `thresholds` and `min_object_sizes` (empty: the single threshold and minimum
    size), the IoU from which an object and a slump match, the score that picks the best
    setting (SCORES) and, for tiles, the year of the reference slumps."""

    thresholds: tuple = ()
    min_object_sizes: tuple = ()
    min_iou: float = DEFAULT_MIN_IOU
    best_by: str = "object_f1"
    year: int | None = None  # tiles: only those of this year (needed when they are of several)

    def checked(self) -> EvaluateSettings:
        super().checked()
        check_choice("best_by", self.best_by, SCORES)
        check_min_iou(self.min_iou)
        check_sweep(self.swept_thresholds, self.swept_sizes, self.best_by)
        return self

    @property
    def swept_thresholds(self) -> list:
        return list(self.thresholds) or [self.threshold]

    @property
    def swept_sizes(self) -> list:
        return list(self.min_object_sizes) or [self.min_object_size]

    def tile_settings(self):
        """These settings as processtiles reads a tile with them (regions.tiles.TileSettings)."""
        from .tiles import TileSettings

        return TileSettings(**{item.name: getattr(self, item.name) for item in dataclasses.fields(PostprocessSettings)})


@dataclass(frozen=True)
class EvaluateInputs:
    """What is evaluated: one `probabilities` raster (with a `quality` mask, or an `extent`
    used as given, or neither), or `tiles` (a folder of tile folders, or a list of tile
    folders or of their probabilities files); and the `reference` slumps, (file, layer or
    None, OGR filter or None) in any CRS."""

    reference: tuple
    probabilities: str | None = None
    quality: str | None = None
    extent: str | None = None
    tiles: str | list | None = None

    @property
    def paths(self) -> list[str]:
        """The files read, the rasters of a folder's tiles too (never to be replaced by an output)."""
        tiles = self.tiles if isinstance(self.tiles, list) else tile_files(self.tiles)
        return [self.probabilities, self.quality, self.extent, self.reference[0], *tiles]


@dataclass(frozen=True)
class EvaluateOutputs:
    """Where the results go: the table (CSV), optionally the best setting's false positives and
    missed slumps (GeoPackages; `*_layer`: that layer of an existing file, its other layers
    kept) and the report (HTML)."""

    table: str
    false_positives: str | None = None
    missed: str | None = None
    report: str | None = None
    false_positives_layer: str | None = None
    missed_layer: str | None = None


@dataclass
class EvaluateSummary:
    """What evaluate_files did: the evaluation (evaluate.Evaluation or TilesEvaluation), the
    best setting in one line, the reference slumps given and scored, the files written and
    the sentences said."""

    evaluation: object
    best_line: str
    given: int
    scored: int
    files: dict  # {"table" | "false_positives" | "missed" | "report": path written}
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def best(self):
        return self.evaluation.best

    @property
    def best_label(self) -> str:
        """The best setting in a few words, for layer names."""
        return f"t={threshold_label(self.best.threshold)}, min size {self.best.min_object_size}"


def evaluate_files(inputs: EvaluateInputs, outputs: EvaluateOutputs, settings: EvaluateSettings | None = None,
                   progress: Progress | None = None, *, files: AtomicFiles | None = None, tags: dict | None = None,
                   log=None, names: dict | None = None, title: str = TITLE) -> EvaluateSummary:
    """Evaluate `inputs` against their reference slumps with `settings` into `outputs`.

    `progress(fraction, message)` is called along the way and may raise to cancel (nothing is
    written then). `files`: an AtomicFiles the caller commits; without it the outputs are
    committed here. `tags`: the GeoPackages' metadata. `log(sentence, warning)` receives the
    notes and warnings as they come. `names` names the inputs in messages (default: the
    algorithm's parameters PROBABILITIES, TILES, INPUT_FOLDER, QUALITY_MASK, EXTENT,
    REFERENCE, EXCLUDE, YEAR)."""
    names = {"probabilities": "PROBABILITIES", "tiles": "TILES", "folder": "INPUT_FOLDER", "quality": "QUALITY_MASK",
             "extent": "EXTENT", "reference": "REFERENCE", "exclude": "EXCLUDE", "year": "YEAR", **(names or {})}
    settings = (settings or EvaluateSettings()).checked()
    report = progress or (lambda fraction, message: None)
    tiles_name = names["tiles"] if isinstance(inputs.tiles, list) else names["folder"]
    if inputs.tiles and inputs.probabilities:
        raise ValueError(f"{names['probabilities']} and {tiles_name} are both given: give one raster, or tiles")
    if inputs.tiles:
        for name in ("quality", "extent"):
            if getattr(inputs, name):
                raise ValueError(f"{names[name]} is given with tiles: each tile's quality mask or extent is read from "
                                 f"its folder (as processtiles reads it)")
        if isinstance(inputs.tiles, str) and not os.path.isdir(inputs.tiles):
            raise ValueError(f"{names['folder']}: {inputs.tiles!r} is not a folder")
    elif settings.year is not None:
        raise ValueError(f"{names['year']} is given with one raster: it picks the tiles of one year from "
                         f"{names['tiles']} or {names['folder']}")
    elif not inputs.probabilities:
        raise ValueError(f"{names['probabilities']}: no raster given (or give {names['tiles']} or {names['folder']})")
    elif inputs.quality and inputs.extent:
        raise ValueError(f"{names['quality']} and {names['extent']} are both given: give one (the extent is used as it "
                         f"is, the quality mask is eroded)")
    run = _evaluate_tiles if inputs.tiles else _evaluate_raster
    protected = inputs.paths + [settings.exclude[0] if settings.exclude else None]
    return run_on_files(lambda files, say: run(inputs, outputs, settings, report, files, tags, say, names, title),
                        protected, files, log)


def tile_files(tiles) -> list:
    """The rasters of the tiles found in the folder `tiles` ([] for anything else)."""
    if not isinstance(tiles, str) or not os.path.isdir(tiles):
        return []
    from .tiles import find_tiles

    try:
        sources, _ = find_tiles(tiles)
    except ValueError:  # no tile: said when the tiles are read
        return []
    return [path for source in sources for path in source.inputs]


def _reference_given(reference, say, names) -> int:
    from .evaluate import reference_count

    given = reference_count(*reference)
    if not given:
        say(f"{names['reference']}: the layer has no slumps: every predicted object is a false positive", True)
    return given


def _evaluate_raster(inputs, outputs, settings, report, files, tags, say, names, title):
    """One raster: its quality mask eroded, its extent as given, or every predicted pixel valid."""
    from ..files.geotiff import probability_scale_of, read_band, read_probabilities, read_quality
    from ..files.grids import check_same_grid, grid_of
    from ..files.tags import postprocessed_again
    from ..kernels.encodings import decode_binary
    from .evaluate import evaluate, reference_raster

    path, what = inputs.probabilities, names["probabilities"]
    report(0.0, "Reading and checking the rasters")
    grid = grid_of(path, what)
    options = dict(mask_erosion_size=settings.mask_erosion_size, edge_erosion_size=settings.edge_erosion_size,
                   quality_level=settings.quality_level, boundary=settings.boundary,
                   size_connectivity=settings.size_connectivity,
                   probability_scale=probability_scale_of(path, what, settings.scale),
                   max_excluded_share=settings.max_excluded_share)
    tile = {"probabilities": read_probabilities(path, what, scale=settings.scale)}
    if inputs.quality:
        check_same_grid(what, grid, names["quality"], grid_of(inputs.quality, names["quality"]))
        tile["quality_data_mask"] = read_quality(inputs.quality, names["quality"])
    elif inputs.extent:  # as processtiles reads DARTS' extent.tif: valid as it is
        check_same_grid(what, grid, names["extent"], grid_of(inputs.extent, names["extent"]))
        tile["quality_data_mask"] = decode_binary(*read_band(inputs.extent, names["extent"]),
                                                  names["extent"]).astype(np.uint8) * 2
        options.update(mask_erosion_size=0, edge_erosion_size=0, quality_level="high_quality")
        say(EXTENT_AS_GIVEN)
    else:
        say(NO_QUALITY)
        tile["quality_data_mask"] = np.where(np.isnan(tile["probabilities"]), 0, 2).astype(np.uint8)
    again = None if inputs.extent else postprocessed_again(path)
    if again:
        say(again, True)
    shape = (grid.height, grid.width)
    scratch_folder = os.path.dirname(os.path.abspath(outputs.table))
    exclude = read_exclusion(settings.exclude, grid, None, files, scratch_folder, say, names["exclude"])
    if exclude is not None:
        options["exclude"] = exclude
    reference_path, layer, where = inputs.reference
    ids, polygons = reference_raster(reference_path, shape, grid.transform_to_write, grid.crs, layer=layer,
                                     where=where, what=names["reference"])
    burnt = polygons.GetLayerByName("polygons").GetFeatureCount()  # those near the grid: ids 1..burnt
    given = _reference_given(inputs.reference, say, names)
    report(0.0, "Sweeping the settings")
    evaluation = evaluate(tile, ids, settings.swept_thresholds, settings.swept_sizes, reference_count=burnt,
                          min_iou=settings.min_iou, by=settings.best_by, device=settings.device,
                          progress=lambda fraction, message: report(0.9 * fraction, message), **options)
    del tile, ids
    scored = int(evaluation.reference.counted.size)
    if scored < given:
        say(f"{given - scored} of {given} reference slumps have no pixel centre inside the valid extent: they are not "
            f"counted", True)
    say(f"Quality mask eroded and every threshold's objects found in {evaluation.seconds_erosion:.2f} s")

    def write_false_positives(file, name):
        from ..files.layers import Layout
        from ..products.polygons import polygonize

        values = read_probabilities(path, what, scale=settings.scale)
        return polygonize(evaluation.false_positives(), grid.geotransform, grid.crs, file, layer=name,
                          probabilities=values, progress=lambda f, m: report(0.9 + 0.08 * f, m),
                          layout=Layout(tags=tags or {}))

    described = {"probabilities": path,
                 "quality mask": inputs.quality or inputs.extent and f"extent {inputs.extent} (as given)" or
                 "(none: every pixel with a prediction counts as high quality)",
                 "reference": _describe_reference(inputs.reference), "probability scale": settings.scale,
                 "exclusion mask": describe_exclusion(settings.exclude), **_sweep_described(settings),
                 **{key: value for key, value in options.items() if key != "exclude"}, "grid": grid.describe()}
    if described["edge_erosion_size"] is None:
        described["edge_erosion_size"] = f"{described['mask_erosion_size']} (the mask erosion size)"
    return _write(evaluation, outputs, files, tags, say, report, title, given, scored, described,
                  write_false_positives, polygons, grid.crs)


def _evaluate_tiles(inputs, outputs, settings, report, files, tags, say, names, title):
    """Several tiles (evaluate.evaluate_tiles holds the rule for borders and overlaps)."""
    from ..files.exclusion import polygons_without_crs
    from .evaluate import evaluate_tiles, reference_polygons, write_tile_false_positives

    tile_settings = settings.tile_settings()
    if settings.exclude:
        say(f"Exclusion mask: {describe_exclusion(settings.exclude)}")
        if polygons_without_crs(settings.exclude[0], settings.exclude[1]):
            say(f"{names['exclude']}: the polygons have no CRS; they are taken to be in the raster's CRS", True)
    given = _reference_given(inputs.reference, say, names)
    if settings.boundary == "remove":
        say("Boundary remove: a slump across an earlier tile's extent edge (where tiles overlap) loses that tile's "
            "part; BOUNDARY=clip keeps it.")
    evaluation = evaluate_tiles(inputs.tiles, inputs.reference, settings.swept_thresholds, settings.swept_sizes,
                                settings=tile_settings, min_iou=settings.min_iou, by=settings.best_by,
                                year=settings.year, progress=lambda fraction, message: report(0.9 * fraction, message))
    for source, pixels in zip(evaluation.sources, evaluation.tile_pixels):
        say(f"Tile {source.tile_id}: {pixels} pixels counted ({source.extent_as_given or 'quality mask eroded'})")
    scored = int(evaluation.reference.counted.size)
    if scored < given:
        say(f"{given - scored} of {given} reference slumps have no pixel centre inside any tile's valid extent: they "
            f"are not counted", True)
    polygons, crs = reference_polygons(*inputs.reference, evaluation.reference_fids)

    def write_false_positives(file, name):
        return write_tile_false_positives(file, name, evaluation, crs, tags,
                                          lambda f, m: report(0.9 + 0.08 * f, m))

    tiles = inputs.tiles
    described = {"tiles": tiles if isinstance(tiles, str) else ", ".join(tiles),
                 **({"year": settings.year} if settings.year is not None else {}),
                 "tiles evaluated": ", ".join(source.tile_id for source in evaluation.sources),
                 "borders and overlaps": "each place counted by the first tile (in tile id order) whose valid extent "
                                         "holds it; objects cut by that border joined",
                 "reference": _describe_reference(inputs.reference),
                 "exclusion mask": describe_exclusion(settings.exclude), **_sweep_described(settings),
                 **{key: value for key, value in tile_settings.on_record().items()
                    if key not in ("threshold", "min_object_size", "binarization", "group_by", "subset",
                                   "statistics_scale", "exclusion_mask")}}
    return _write(evaluation, outputs, files, tags, say, report, title, given, scored, described,
                  write_false_positives, polygons, crs)


def _describe_reference(reference) -> str:
    path, layer, where = reference
    return path + (f", layer {layer}" if layer else "") + (f", where {where}" if where else "")


def _sweep_described(settings) -> dict:
    return {"thresholds": ", ".join(threshold_label(t) for t in settings.swept_thresholds),
            "minimum object sizes": ", ".join(map(str, settings.swept_sizes)), "minimum IoU": settings.min_iou,
            "best by": settings.best_by}


def _write(evaluation, outputs, files, tags, say, report, title, given, scored, described, write_false_positives,
           polygons, crs) -> EvaluateSummary:
    """What both paths write once the sweep is scored: the log's lines per setting and the best
    one, the table, the best setting's false positives and missed slumps, the report."""
    from .evaluate import write_csv, write_missed

    for setting in evaluation.settings:
        row = setting.scores
        say(f"threshold {threshold_label(setting.threshold)}, minimum size {setting.min_object_size}: object F1 "
            f"{row['object_f1']:.3f} (precision {row['object_precision']:.3f}, recall {row['object_recall']:.3f}; "
            f"{row['object_tp']} matched, {row['object_fp']} false positives, {row['object_fn']} missed), pixel IoU "
            f"{row['pixel_iou']:.3f}, {row['seconds']:.3f} s")
    line = best_line(evaluation)
    say(line)
    report(0.9, "Writing the outputs")
    write_csv(files.reserve(outputs.table), evaluation)
    written = {"table": outputs.table}
    if outputs.false_positives:
        report(0.9, "Writing the false positives")
        into_geopackage(files, outputs.false_positives, outputs.false_positives_layer, write_false_positives)
        written["false_positives"] = outputs.false_positives
    if outputs.missed:
        report(0.98, "Writing the missed reference slumps")
        into_geopackage(files, outputs.missed, outputs.missed_layer, lambda file, name: write_missed(
            file, name, polygons, evaluation.missed(), evaluation, crs, tags))
        written["missed"] = outputs.missed
    if outputs.report:
        from .report import render_evaluation_report

        page = render_evaluation_report(title, list(described.items()),
                                        [setting.row() for setting in evaluation.settings], evaluation.best.row(),
                                        evaluation.by, dict(given=given, scored=scored, left_out=given - scored,
                                                            extent_pixels=evaluation.extent_pixels))
        with open(files.reserve(outputs.report), "w", encoding="utf-8") as handle:
            handle.write(page)
        written["report"] = outputs.report
    report(1.0, "Done")
    return EvaluateSummary(evaluation, line, given, scored, written)
