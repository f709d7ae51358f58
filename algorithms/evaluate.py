"""darts:evaluate — how good the map is against reference slumps, and which threshold and
minimum object size fit best (the rules: core/evaluate.py)."""

import os
from typing import NamedTuple
import re

from qgis.core import (
    QgsProcessing,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..definitions import Choices
from .base import DartsAlgorithm
from .exclusion import add_exclusion, exclusion_file, exclusion_input, warn_without_crs
from .parameters import VectorFile, threshold_label
from .prepare_export import PrepareExportAlgorithm, describe_exclusion
from .process_tiles import ProcessTilesAlgorithm, add_tile_folder
from .styles import style_on_load

BEST_BY = Choices(("object_f1", "Object F1"), ("object_precision", "Object precision"),
                  ("object_recall", "Object recall"), ("found_share", "Share of reference slumps found at all"),
                  ("pixel_iou", "Pixel IoU"), ("pixel_f1", "Pixel F1"), ("pixel_precision", "Pixel precision"),
                  ("pixel_recall", "Pixel recall"))



class SweepRequest(NamedTuple):
    """What darts:evaluate writes and sweeps, as its parameters ask."""

    table: str
    false_positives: str
    missed: str
    report: str
    thresholds: list
    min_sizes: list
    best_by: str
    min_iou: float
    scratch_folder: str

class EvaluateAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    TILES = "TILES"
    INPUT_FOLDER = ProcessTilesAlgorithm.INPUT_FOLDER
    QUALITY_MASK = "QUALITY_MASK"
    EXTENT = "EXTENT"
    REFERENCE = "REFERENCE"
    THRESHOLD = "THRESHOLD"
    THRESHOLDS = "THRESHOLDS"
    MIN_OBJECT_SIZE = "MIN_OBJECT_SIZE"
    MIN_OBJECT_SIZES = "MIN_OBJECT_SIZES"
    MASK_EROSION_SIZE = "MASK_EROSION_SIZE"
    EDGE_EROSION_SIZE = "EDGE_EROSION_SIZE"
    QUALITY_LEVEL = "QUALITY_LEVEL"
    EXCLUDE = "EXCLUDE"
    BOUNDARY = "BOUNDARY"
    SIZE_CONNECTIVITY = "SIZE_CONNECTIVITY"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    MIN_IOU = "MIN_IOU"
    BEST_BY = "BEST_BY"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    OUTPUT_FALSE_POSITIVES = "OUTPUT_FALSE_POSITIVES"
    OUTPUT_MISSED = "OUTPUT_MISSED"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    BEST_THRESHOLD = "BEST_THRESHOLD"
    BEST_MIN_OBJECT_SIZE = "BEST_MIN_OBJECT_SIZE"
    BEST_SCORE = "BEST_SCORE"
    BEST_SUMMARY = "BEST_SUMMARY"
    HELP = {
        PROBABILITIES: "Segmentation probabilities of one tile or mosaic: float 0..1 (NaN or nodata = no prediction) or "
                       "DARTS' uint8 percent (0..100, nodata 255). Or give TILES or a folder of tiles instead.",
        TILES: "Instead of one raster: several tiles' probabilities.tif, each read with its tile folder as processtiles "
               "reads it (quality_data_mask.tif eroded, or the extent as given: extent.tif, prediction_extent.gpkg).",
        QUALITY_MASK: "0 invalid, 1 low, 2 high quality, on the probabilities' grid; eroded as prepareexport does. Not "
                      "set: the extent, or else every pixel with a prediction counts as high quality.",
        EXTENT: "Instead of the quality mask: a 0/1 extent on the probabilities' grid (DARTS' extent.tif), used as it "
                "is (no erosion, no edge band).",
        REFERENCE: "Slumps digitized by hand (polygons, any CRS; not without one). Burnt onto the probabilities' grid "
                   "at pixel centres; only their pixels inside the valid extent count.",
        OUTPUT_TABLE: "CSV: one row per threshold x minimum size with the pixel and object counts and scores and "
                      "the seconds it took; best = 1 on the best setting's row.",
        OUTPUT_FALSE_POSITIVES: "Predicted objects of the best setting that match no reference slump (GeoPackage, "
                                "with the statistics of polygonize).",
        OUTPUT_MISSED: "Reference slumps the best setting does not match (GeoPackage, in the probabilities' CRS): "
                       "reference_fid, npixel inside the extent, best_iou with any predicted object, overlapped "
                       "(1 when some object overlaps it at all).",
        OUTPUT_REPORT: "HTML: the best setting, scores against the threshold, a precision-recall curve, every "
                       "setting's numbers and the parameters.",
    }

    def name(self):
        return "evaluate"

    def displayName(self):  # noqa: N802
        return self.tr("Evaluate against reference")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>How good is the map here, and which <b>threshold</b> and <b>minimum object size</b> fit this region "
            "best? Compares DARTS' postprocessing of the probabilities (as prepareexport computes it) with slumps "
            "digitized by hand, for each threshold x minimum size of the sweep.</p>"
            "<p>Everything is counted inside the <b>valid extent</b> (the quality mask after erosion, or the extent "
            "given): reference pixels outside it are not counted, and a reference slump without a pixel centre "
            "inside it is left out.</p>"
            "<ul><li><b>Pixel scores</b>: IoU, F1, precision, recall (with the true/false positive and negative pixel "
            "counts).</li>"
            "<li><b>Object scores</b>: a predicted object and a reference slump match when their IoU is at least "
            "<b>minimum IoU</b> (0.5), one-to-one, greedy by IoU. Matched = TP, unmatched objects = FP, unmatched "
            "slumps = FN; precision, recall, F1; and the share of reference slumps any object overlaps at all.</li>"
            "<li>Empty cases are scores, not errors: precision is 1 when nothing is predicted, recall 1 when there is "
            "nothing to find, F1 and IoU 1 when both are empty.</li></ul>"
            "<p>The <b>best setting</b> (highest score chosen, object F1 by default; the first of equals) is said in "
            "the log; its false positives and missed slumps are written as layers to look at. The quality mask is "
            "eroded once and each threshold labelled once, whatever the number of minimum sizes.</p>"
            "<p>Thresholds: a list (e.g. 0.3,0.4,0.5,0.6,0.7) replaces the single threshold; minimum sizes likewise "
            "(e.g. 0,16,32,64).</p>"
            "<p><b>Several tiles</b> (<b>tiles</b>, or a <b>folder of tile folders</b>, found and read as "
            "<i>Process tiles</i> reads them; one tile in memory at a time): each tile is postprocessed alone with "
            "its own valid extent. Each place counts once: a tile counts only the pixels of its extent that no "
            "earlier tile (in tile id order) covers. A reference slump across tiles is one slump; a predicted object "
            "cut by that border is joined from its parts in the two tiles. With boundary <i>remove</i> a slump "
            "across an earlier tile's extent edge loses that tile's part (removed there); <i>clip</i> keeps it.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities (one raster)"),
                                                            optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(self.TILES, self.tr("Or: tiles (their probabilities.tif)"),
                                                               QgsProcessing.SourceType.TypeRaster, optional=True))
        add_tile_folder(self, optional=True)
        self.addParameter(QgsProcessingParameterRasterLayer(self.QUALITY_MASK, self.tr("Quality mask (0/1/2)"),
                                                            optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.EXTENT, self.tr("Extent (0/1, used as given)"),
                                                            optional=True))
        self.addParameter(VectorFile(self.REFERENCE, self.tr("Reference slumps (polygons)"),
                                     [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.add_postprocessing(self.THRESHOLD)
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.THRESHOLDS, self.tr("Thresholds to sweep (e.g. 0.3,0.4,0.5,0.6,"
                                                                           "0.7; replaces the threshold)"),
                                                  optional=True, defaultValue=""), False,
                     "Every threshold is scored with every minimum size")
        self.add_postprocessing(self.MIN_OBJECT_SIZE)
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.MIN_OBJECT_SIZES, self.tr("Minimum sizes to sweep (e.g. 0,16,32,"
                                                                                 "64; replaces the minimum size)"),
                                                  optional=True, defaultValue=""), False,
                     "Every minimum size is scored with every threshold")
        self.add_postprocessing(self.MASK_EROSION_SIZE, self.EDGE_EROSION_SIZE, self.QUALITY_LEVEL)
        minimum = QgsProcessingParameterNumber(self.MIN_IOU, self.tr("Minimum IoU for a match"),
                                               QgsProcessingParameterNumber.Type.Double, defaultValue=0.5,
                                               minValue=0.001, maxValue=1.0)
        self.add_parameter_with_help(
            minimum, False, "A predicted object and a reference slump match when their intersection over "
                                     "union is at least this (one-to-one, greedy by IoU)")
        self.add_enum(self.BEST_BY, "Best setting by", BEST_BY, "object_f1",
                      help_text="The score that picks the best setting (the first of equals), whose false positives "
                                "and missed slumps are written")
        add_exclusion(self)
        self.add_postprocessing(self.BOUNDARY, self.SIZE_CONNECTIVITY, "DEVICE", self.PROBABILITY_SCALE)
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_TABLE, self.tr("Scores per setting"),
                                                                self.tr("CSV files (*.csv)")))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_FALSE_POSITIVES, self.tr("False positives (best setting)"),
            QgsProcessing.SourceType.TypeVectorPolygon, optional=True))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_MISSED, self.tr("Missed reference slumps (best setting)"),
            QgsProcessing.SourceType.TypeVectorPolygon, optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, self.tr("Report"),
                                                                self.tr("HTML files (*.html)"), optional=True))
        self.addOutput(QgsProcessingOutputNumber(self.BEST_THRESHOLD, self.tr("Best threshold")))
        self.addOutput(QgsProcessingOutputNumber(self.BEST_MIN_OBJECT_SIZE, self.tr("Best minimum object size")))
        self.addOutput(QgsProcessingOutputNumber(self.BEST_SCORE, self.tr("Best score")))
        self.addOutput(QgsProcessingOutputString(self.BEST_SUMMARY, self.tr("Best setting")))

    def thresholds(self, parameters, context):
        """THRESHOLDS as prepareexport reads them ([] when empty)."""
        return PrepareExportAlgorithm.thresholds(self, parameters, context)

    def min_sizes(self, parameters, context):
        """MIN_OBJECT_SIZES ([MIN_OBJECT_SIZE] when empty)."""
        text = self.parameterAsString(parameters, self.MIN_OBJECT_SIZES, context).strip()
        if not text:
            return [self.parameterAsInt(parameters, self.MIN_OBJECT_SIZE, context)]
        values = []
        for item in re.split(r"[\s,;]+", text):
            if not item.isdigit():
                raise ValueError(f"{self.MIN_OBJECT_SIZES}: {item!r} is no pixel count (give e.g. 0,16,32,64)")
            if int(item) in values:
                raise ValueError(f"{self.MIN_OBJECT_SIZES}: {item!r} is given twice")
            values.append(int(item))
        return values

    def input_paths(self, parameters, context):
        paths = super().input_paths(parameters, context) + [exclusion_file(self, parameters, context),
                                                            exclusion_file(self, parameters, context, self.REFERENCE)]
        tiles = self.tile_inputs(parameters, context)
        if tiles:  # the tiles' rasters, as processtiles protects them
            from ..core.regions.tiles import find_tiles

            try:
                sources, _ = find_tiles(tiles)
            except ValueError:  # not a folder: said by execute
                sources = []
            paths += [path for source in sources for path in source.inputs]
        return paths

    def tile_inputs(self, parameters, context):
        """The folder (INPUT_FOLDER) or the tiles' probabilities files (TILES); None when neither
        is given (one raster: PROBABILITIES)."""
        folder = self.parameterAsFile(parameters, self.INPUT_FOLDER, context)
        files = [path for _, path in self.raster_files(parameters, self.TILES, context)]
        if folder and files:
            raise ValueError(f"{self.TILES} and {self.INPUT_FOLDER} are both given: give one")
        return folder or files or None

    def execute(self, parameters, context, feedback, outputs):
        import numpy as np

        from ..core.files.exclusion import exclusion_mask
        from ..core.files.geotiff import probability_scale_of
        from ..core.products.settings import PostprocessSettings
        from ..core.regions.evaluate import best_line, evaluate, reference_count, reference_raster, write_csv, write_missed
        from ..core.files.geotiff import read_probabilities, read_quality
        from ..core.files.grids import check_same_grid, grid_of
        from .raster_io import read_binary

        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        tiles = self.tile_inputs(parameters, context)
        probabilities_path = self.raster_path(parameters, self.PROBABILITIES, context, required=False)
        if tiles and probabilities_path:
            raise ValueError(f"{self.PROBABILITIES} and {self.TILES if isinstance(tiles, list) else self.INPUT_FOLDER} "
                             f"are both given: give one raster, or tiles")
        if tiles:
            return self.execute_tiles(parameters, context, feedback, outputs, tiles)
        if not probabilities_path:
            raise ValueError(f"{self.PROBABILITIES}: no raster given (or give {self.TILES} or {self.INPUT_FOLDER})")
        quality_path = self.raster_path(parameters, self.QUALITY_MASK, context, required=False)
        extent_path = self.raster_path(parameters, self.EXTENT, context, required=False)
        if quality_path and extent_path:
            raise ValueError(f"{self.QUALITY_MASK} and {self.EXTENT} are both given: give one (the extent is used as "
                             f"it is, the quality mask is eroded)")
        (table_path, false_positives_path, missed_path, report_path, thresholds, min_sizes, by, min_iou,
         scratch_folder) = self.sweep_request(parameters, context)

        feedback.setProgressText(self.tr("Reading and checking the rasters"))
        grid = grid_of(probabilities_path, self.PROBABILITIES)
        settings = self.postprocess_settings(parameters, context, feedback, PostprocessSettings)
        options = dict(mask_erosion_size=settings.mask_erosion_size, edge_erosion_size=settings.edge_erosion_size,
                       quality_level=settings.quality_level, boundary=settings.boundary,
                       size_connectivity=settings.size_connectivity,
                       probability_scale=probability_scale_of(probabilities_path, self.PROBABILITIES, scale),
                       max_excluded_share=settings.max_excluded_share)
        tile = {"probabilities": read_probabilities(probabilities_path, self.PROBABILITIES, scale=scale)}
        if quality_path:
            check_same_grid(self.PROBABILITIES, grid, self.QUALITY_MASK, grid_of(quality_path, self.QUALITY_MASK))
            tile["quality_data_mask"] = read_quality(quality_path, self.QUALITY_MASK)
        elif extent_path:  # as processtiles reads DARTS' extent.tif: valid as it is
            check_same_grid(self.PROBABILITIES, grid, self.EXTENT, grid_of(extent_path, self.EXTENT))
            tile["quality_data_mask"] = read_binary(extent_path, self.EXTENT).astype(np.uint8) * 2
            options.update(mask_erosion_size=0, edge_erosion_size=0, quality_level="high_quality")
            feedback.pushInfo(self.tr("Extent given: used as it is (no erosion, no edge band)."))
        else:
            feedback.pushInfo(self.tr("No quality mask: every pixel with a prediction counts as high quality."))
            tile["quality_data_mask"] = np.where(np.isnan(tile["probabilities"]), 0, 2).astype(np.uint8)
        if not extent_path:
            self.note_darts_postprocessed(probabilities_path, feedback)
        shape = (grid.height, grid.width)
        exclusion = exclusion_input(self, parameters, context,
                                    lambda: outputs.scratch(os.path.join(scratch_folder, "exclusion.gpkg")))
        if exclusion:
            path, layer, where = exclusion
            feedback.pushInfo(self.tr("Exclusion mask: {}").format(describe_exclusion(exclusion)))
            warn_without_crs(self, exclusion, feedback)
            options["exclude"] = exclusion_mask(path, shape, grid.transform_to_write, grid.crs, layer=layer, where=where,
                                                what=self.EXCLUDE)
        reference_source = exclusion_input(self, parameters, context,
                                           lambda: outputs.scratch(os.path.join(scratch_folder, "reference.gpkg")),
                                           self.REFERENCE)
        if reference_source is None:
            raise ValueError(f"{self.REFERENCE}: no reference slumps given")
        path, layer, where = reference_source
        ids, polygons = reference_raster(path, shape, grid.transform_to_write, grid.crs, layer=layer, where=where,
                                         what=self.REFERENCE)
        burnt = polygons.GetLayerByName("polygons").GetFeatureCount()  # those near the grid: ids 1..burnt
        given = reference_count(path, layer, where)
        if not given:
            feedback.pushWarning(self.tr("{}: the layer has no slumps: every predicted object is a false positive")
                                 .format(self.REFERENCE))
        self.check_canceled(feedback)

        steps = QgsProcessingMultiStepFeedback(2, feedback)  # the sweep, then the outputs
        evaluation = evaluate(tile, ids, thresholds, min_sizes, reference_count=burnt, min_iou=min_iou, by=by,
                              device=settings.device, progress=self.progress_reporter(steps), **options)
        del tile, ids
        scored = int(evaluation.reference.counted.size)
        if scored < given:
            feedback.pushWarning(self.tr("{} of {} reference slumps have no pixel centre inside the valid extent: they "
                                         "are not counted").format(given - scored, given))
        feedback.pushInfo(self.tr("Quality mask eroded and every threshold's objects found in {:.2f} s").format(
            evaluation.seconds_erosion))
        self.log_settings(evaluation, feedback)
        best = evaluation.best
        line = best_line(evaluation)
        feedback.pushInfo(line)
        best_label = self.tr("t={}, min size {}").format(threshold_label(best.threshold), best.min_object_size)

        steps.setCurrentStep(1)
        feedback.setProgressText(self.tr("Writing the outputs"))
        write_csv(outputs.reserve(table_path), evaluation)
        results = {self.OUTPUT_TABLE: table_path, self.BEST_THRESHOLD: best.threshold,
                   self.BEST_MIN_OBJECT_SIZE: best.min_object_size, self.BEST_SCORE: best.scores[by],
                   self.BEST_SUMMARY: line}
        self.check_canceled(feedback)
        if false_positives_path:
            self.write_polygons(false_positives_path, context, outputs, evaluation.false_positives(), grid,
                                read_probabilities(probabilities_path, self.PROBABILITIES, scale=scale),
                                self.progress_reporter(steps))
            style_on_load(context, false_positives_path, "false_positives",
                          self.tr("False positives ({})").format(best_label))
            results[self.OUTPUT_FALSE_POSITIVES] = false_positives_path
        self.check_canceled(feedback)
        if missed_path:
            from .paths import into_geopackage

            into_geopackage(missed_path, outputs, lambda file, name: write_missed(
                file, name, polygons, evaluation.missed(), evaluation, grid.crs, outputs.tags))
            style_on_load(context, missed_path, "missed", self.tr("Missed reference slumps ({})").format(best_label))
            results[self.OUTPUT_MISSED] = missed_path
        if report_path:
            from ..core.regions.report import render_evaluation_report

            inputs = {"probabilities": probabilities_path,
                      "quality mask": quality_path or extent_path and f"extent {extent_path} (as given)" or
                      "(none: every pixel with a prediction counts as high quality)",
                      "reference": path + (f", layer {layer}" if layer else "") + (f", where {where}" if where else ""),
                      "probability scale": scale, "exclusion mask": describe_exclusion(exclusion),
                      "thresholds": ", ".join(threshold_label(t) for t in thresholds),
                      "minimum object sizes": ", ".join(map(str, min_sizes)), "minimum IoU": min_iou,
                      "best by": by, **{k: v for k, v in options.items() if k != "exclude"}, "grid": grid.describe()}
            if inputs["edge_erosion_size"] is None:
                inputs["edge_erosion_size"] = f"{inputs['mask_erosion_size']} (the mask erosion size)"
            page = render_evaluation_report(
                self.tr("DARTS evaluation against reference slumps"), list(inputs.items()),
                [setting.row() for setting in evaluation.settings], best.row(), by,
                dict(given=given, scored=scored, left_out=given - scored, extent_pixels=evaluation.extent_pixels))
            with open(outputs.reserve(report_path), "w", encoding="utf-8") as handle:
                handle.write(page)
            results[self.OUTPUT_REPORT] = report_path
        feedback.setProgress(100)
        return results


    def log_settings(self, evaluation, feedback):
        for setting in evaluation.settings:
            row = setting.scores
            feedback.pushInfo(self.tr("threshold {}, minimum size {}: object F1 {:.3f} (precision {:.3f}, recall "
                                      "{:.3f}; {} matched, {} false positives, {} missed), pixel IoU {:.3f}, {:.3f} s")
                              .format(threshold_label(setting.threshold), setting.min_object_size, row["object_f1"],
                                      row["object_precision"], row["object_recall"], row["object_tp"],
                                      row["object_fp"], row["object_fn"], row["pixel_iou"], row["seconds"]))

    def sweep_request(self, parameters, context) -> "SweepRequest":
        """The output paths and the sweep's settings, read the same for one raster and for tiles."""
        table_path = self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)
        return SweepRequest(
            table_path, self.parameterAsOutputLayer(parameters, self.OUTPUT_FALSE_POSITIVES, context),
            self.parameterAsOutputLayer(parameters, self.OUTPUT_MISSED, context),
            self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context),
            self.thresholds(parameters, context) or [self.parameterAsDouble(parameters, self.THRESHOLD, context)],
            self.min_sizes(parameters, context), self.parameterAsEnumString(parameters, self.BEST_BY, context),
            self.parameterAsDouble(parameters, self.MIN_IOU, context), os.path.dirname(os.path.abspath(table_path)))

    def execute_tiles(self, parameters, context, feedback, outputs, tiles):
        """execute for several tiles (core.regions.evaluate.evaluate_tiles: the rule for borders and overlaps)."""
        from ..core.regions.evaluate import (best_line, evaluate_tiles, reference_count, reference_polygons, write_csv,
                                             write_missed, write_tile_false_positives)
        from ..core.regions.tiles import TileSettings

        for name in (self.QUALITY_MASK, self.EXTENT):
            if self.raster_path(parameters, name, context, required=False):
                raise ValueError(f"{name} is given with tiles: each tile's quality mask or extent is read from its "
                                 f"folder (as processtiles reads it)")
        (table_path, false_positives_path, missed_path, report_path, thresholds, min_sizes, by, min_iou,
         scratch_folder) = self.sweep_request(parameters, context)
        if isinstance(tiles, str) and not os.path.isdir(tiles):
            raise ValueError(f"{self.INPUT_FOLDER}: {tiles!r} is not a folder")
        exclusion = exclusion_input(self, parameters, context,
                                    lambda: outputs.scratch(os.path.join(scratch_folder, "exclusion.gpkg")))
        if exclusion:
            feedback.pushInfo(self.tr("Exclusion mask: {}").format(describe_exclusion(exclusion)))
            warn_without_crs(self, exclusion, feedback)
        settings = self.postprocess_settings(parameters, context, feedback, TileSettings, exclude=exclusion)
        reference_source = exclusion_input(self, parameters, context,
                                           lambda: outputs.scratch(os.path.join(scratch_folder, "reference.gpkg")),
                                           self.REFERENCE)
        if reference_source is None:
            raise ValueError(f"{self.REFERENCE}: no reference slumps given")
        path, layer, where = reference_source
        given = reference_count(path, layer, where)
        if not given:
            feedback.pushWarning(self.tr("{}: the layer has no slumps: every predicted object is a false positive")
                                 .format(self.REFERENCE))
        if settings.boundary == "remove":
            feedback.pushInfo(self.tr("Boundary remove: a slump across an earlier tile's extent edge (where tiles "
                                      "overlap) loses that tile's part; BOUNDARY=clip keeps it."))
        steps = QgsProcessingMultiStepFeedback(2, feedback)  # the sweep, then the outputs
        evaluation = evaluate_tiles(tiles, reference_source, thresholds, min_sizes, settings=settings, min_iou=min_iou,
                                    by=by, progress=self.progress_reporter(steps))
        for source, pixels in zip(evaluation.sources, evaluation.tile_pixels):
            feedback.pushInfo(self.tr("Tile {}: {} pixels counted ({})").format(
                source.tile_id, pixels, source.extent_as_given or "quality mask eroded"))
        scored = int(evaluation.reference.counted.size)
        if scored < given:
            feedback.pushWarning(self.tr("{} of {} reference slumps have no pixel centre inside any tile's valid "
                                         "extent: they are not counted").format(given - scored, given))
        self.log_settings(evaluation, feedback)
        best = evaluation.best
        line = best_line(evaluation)
        feedback.pushInfo(line)
        best_label = self.tr("t={}, min size {}").format(threshold_label(best.threshold), best.min_object_size)

        steps.setCurrentStep(1)
        feedback.setProgressText(self.tr("Writing the outputs"))
        write_csv(outputs.reserve(table_path), evaluation)
        results = {self.OUTPUT_TABLE: table_path, self.BEST_THRESHOLD: best.threshold,
                   self.BEST_MIN_OBJECT_SIZE: best.min_object_size, self.BEST_SCORE: best.scores[by],
                   self.BEST_SUMMARY: line}
        self.check_canceled(feedback)
        polygons, crs = reference_polygons(path, layer, where, evaluation.reference_fids)
        from .paths import into_geopackage

        if false_positives_path:
            progress = self.progress_reporter(steps)
            into_geopackage(false_positives_path, outputs, lambda file, name: write_tile_false_positives(
                file, name, evaluation, crs, outputs.tags, progress))
            style_on_load(context, false_positives_path, "false_positives",
                          self.tr("False positives ({})").format(best_label))
            results[self.OUTPUT_FALSE_POSITIVES] = false_positives_path
        self.check_canceled(feedback)
        if missed_path:
            into_geopackage(missed_path, outputs, lambda file, name: write_missed(
                file, name, polygons, evaluation.missed(), evaluation, crs, outputs.tags))
            style_on_load(context, missed_path, "missed", self.tr("Missed reference slumps ({})").format(best_label))
            results[self.OUTPUT_MISSED] = missed_path
        if report_path:
            from ..core.regions.report import render_evaluation_report

            inputs = {"tiles": tiles if isinstance(tiles, str) else ", ".join(tiles),
                      "tiles evaluated": ", ".join(source.tile_id for source in evaluation.sources),
                      "borders and overlaps": "each place counted by the first tile (in tile id order) whose valid "
                                              "extent holds it; objects cut by that border joined",
                      "reference": path + (f", layer {layer}" if layer else "") + (f", where {where}" if where else ""),
                      "exclusion mask": describe_exclusion(exclusion),
                      "thresholds": ", ".join(threshold_label(t) for t in thresholds),
                      "minimum object sizes": ", ".join(map(str, min_sizes)), "minimum IoU": min_iou, "best by": by,
                      **{k: v for k, v in settings.on_record().items()
                         if k not in ("threshold", "min_object_size", "binarization", "group_by", "subset",
                                      "statistics_scale", "exclusion_mask")}}
            page = render_evaluation_report(
                self.tr("DARTS evaluation against reference slumps"), list(inputs.items()),
                [setting.row() for setting in evaluation.settings], best.row(), by,
                dict(given=given, scored=scored, left_out=given - scored, extent_pixels=evaluation.extent_pixels))
            with open(outputs.reserve(report_path), "w", encoding="utf-8") as handle:
                handle.write(page)
            results[self.OUTPUT_REPORT] = report_path
        feedback.setProgress(100)
        return results
