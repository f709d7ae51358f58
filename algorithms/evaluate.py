"""darts:evaluate — how good the map is against reference slumps, and which threshold and
minimum object size fit best (the run: core/regions/evaluate_files.py; the rules:
core/regions/evaluate.py)."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..definitions import SCORES
from .base import DartsAlgorithm
from .exclusion import add_exclusion, exclusion_file, exclusion_input
from .parameters import VectorFile
from .paths import geopackage_layer
from .prepare_export import PrepareExportAlgorithm
from .process_tiles import ProcessTilesAlgorithm, add_tile_folder
from .styles import style_on_load


class EvaluateAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    TILES = "TILES"
    INPUT_FOLDER = ProcessTilesAlgorithm.INPUT_FOLDER
    YEAR = "YEAR"
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
        YEAR: "With tiles: only the tiles of this year (by their DARTS ids), the year of the reference slumps; "
              "needed when the tiles are of several years.",
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
        year = QgsProcessingParameterNumber(self.YEAR, self.tr("Year of the reference (tiles of several years)"),
                                            QgsProcessingParameterNumber.Type.Integer, optional=True, minValue=1900,
                                            maxValue=2200)
        self.add_parameter_with_help(year, False, self.HELP[self.YEAR])
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
        self.add_enum(self.BEST_BY, "Best setting by", SCORES, "object_f1",
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

    def run_inputs(self, parameters, context, outputs=None):
        """The core's EvaluateInputs of the parameters (a reference layer that is no file is
        copied to a scratch GeoPackage of `outputs`)."""
        from ..core.regions.evaluate_files import EvaluateInputs

        folder = self.parameterAsFile(parameters, self.INPUT_FOLDER, context)
        files = [path for _, path in self.raster_files(parameters, self.TILES, context)]
        if folder and files:
            raise ValueError(f"{self.TILES} and {self.INPUT_FOLDER} are both given: give one")
        if outputs is None:
            reference = (exclusion_file(self, parameters, context, self.REFERENCE), None, None)
        else:
            reference = exclusion_input(self, parameters, context, lambda: outputs.scratch(
                os.path.join(self.scratch_folder(parameters, context), "reference.gpkg")), self.REFERENCE)
            if reference is None:
                raise ValueError(f"{self.REFERENCE}: no reference slumps given")
        return EvaluateInputs(reference, self.raster_path(parameters, self.PROBABILITIES, context, required=False),
                              self.raster_path(parameters, self.QUALITY_MASK, context, required=False),
                              self.raster_path(parameters, self.EXTENT, context, required=False),
                              folder or files or None)

    def scratch_folder(self, parameters, context):
        return os.path.dirname(os.path.abspath(self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context)))

    def input_paths(self, parameters, context):
        return super().input_paths(parameters, context) + [exclusion_file(self, parameters, context)] + [
            path for path in self.run_inputs(parameters, context).paths if path]

    def execute(self, parameters, context, feedback, outputs):
        from ..core.kernels.checks import parse_sizes
        from ..core.regions.evaluate_files import TITLE, EvaluateOutputs, EvaluateSettings, evaluate_files

        inputs = self.run_inputs(parameters, context, outputs)
        false_positives, missed = (geopackage_layer(self.parameterAsOutputLayer(parameters, name, context) or "")
                                   for name in (self.OUTPUT_FALSE_POSITIVES, self.OUTPUT_MISSED))
        files = EvaluateOutputs(self.parameterAsFileOutput(parameters, self.OUTPUT_TABLE, context),
                                false_positives[0] or None, missed[0] or None,
                                self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None,
                                false_positives[1], missed[1])
        settings = self.postprocess_settings(
            parameters, context, feedback, EvaluateSettings,
            thresholds=tuple(PrepareExportAlgorithm.thresholds(self, parameters, context)),
            min_object_sizes=tuple(parse_sizes(self.parameterAsString(parameters, self.MIN_OBJECT_SIZES, context),
                                               self.MIN_OBJECT_SIZES)),
            min_iou=self.parameterAsDouble(parameters, self.MIN_IOU, context),
            best_by=self.parameterAsEnumString(parameters, self.BEST_BY, context),
            year=self.optional_int(parameters, self.YEAR, context),
            exclude=exclusion_input(self, parameters, context, lambda: outputs.scratch(
                os.path.join(self.scratch_folder(parameters, context), "exclusion.gpkg"))))

        summary = evaluate_files(inputs, files, settings, self.progress_reporter(feedback), files=outputs,
                                 tags=outputs.tags, log=self.log_to(feedback), title=self.tr(TITLE))
        best = summary.best
        results = {self.OUTPUT_TABLE: files.table, self.BEST_THRESHOLD: best.threshold,
                   self.BEST_MIN_OBJECT_SIZE: best.min_object_size, self.BEST_SCORE: best.scores[settings.best_by],
                   self.BEST_SUMMARY: summary.best_line}
        for name, kind, title in ((self.OUTPUT_FALSE_POSITIVES, "false_positives", self.tr("False positives ({})")),
                                  (self.OUTPUT_MISSED, "missed", self.tr("Missed reference slumps ({})"))):
            if kind in summary.files:
                path = self.parameterAsOutputLayer(parameters, name, context)
                style_on_load(context, path, kind, title.format(summary.best_label))
                results[name] = path
        if files.report:
            results[self.OUTPUT_REPORT] = files.report
        feedback.setProgress(100)
        return results
