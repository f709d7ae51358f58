"""darts:prepareexport — DARTS' whole postprocessing step on a probabilities raster."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .base import DartsAlgorithm
from .blocks import add_block_parameters, memory_limit, scheduler_address
from .exclusion import EXCLUDE, add_exclusion, exclusion_file, exclusion_input
from .parameters import threshold_label
from .paths import geopackage_layer
from .polygon_options import add_statistics_scale
from .styles import style_on_load


class PrepareExportAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    QUALITY_MASK = "QUALITY_MASK"
    SUBSET_PROBABILITIES = "SUBSET_PROBABILITIES"
    THRESHOLD = "THRESHOLD"
    THRESHOLDS = "THRESHOLDS"
    EXCLUDE = EXCLUDE
    MASK_EROSION_SIZE = "MASK_EROSION_SIZE"
    EDGE_EROSION_SIZE = "EDGE_EROSION_SIZE"
    MIN_OBJECT_SIZE = "MIN_OBJECT_SIZE"
    QUALITY_LEVEL = "QUALITY_LEVEL"
    BOUNDARY = "BOUNDARY"
    SIZE_CONNECTIVITY = "SIZE_CONNECTIVITY"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    OUTPUT_BINARIZED = "OUTPUT_BINARIZED"
    OUTPUT_EXTENT = "OUTPUT_EXTENT"
    OUTPUT_PROBABILITIES = "OUTPUT_PROBABILITIES"
    OUTPUT_SUBSET_BINARIZED = "OUTPUT_SUBSET_BINARIZED"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    OUTPUT_THRESHOLD_BINARIZED = "OUTPUT_THRESHOLD_BINARIZED"
    OUTPUT_THRESHOLD_POLYGONS = "OUTPUT_THRESHOLD_POLYGONS"
    HELP = {
        PROBABILITIES: "Segmentation probabilities of one tile: float 0..1 (NaN or nodata = no prediction) or DARTS' "
                       "uint8 percent (0..100, nodata 255).",
        QUALITY_MASK: "0 invalid, 1 low, 2 high quality, on the probabilities' grid. Not set: every pixel with a "
                      "prediction counts as high quality.",
        SUBSET_PROBABILITIES: "More probability rasters on the same grid (ensemble members), processed the same way; "
                              "each binarized result is written beside the binarized output as "
                              "<name>-<layer name>.tif.",
        OUTPUT_BINARIZED: "uint8 GeoTIFF: 1 = kept object, 0 = background.",
        OUTPUT_EXTENT: "uint8 GeoTIFF: 1 = the valid area after the erosion and the edge band, 0 = invalid.",
        OUTPUT_PROBABILITIES: "The probabilities inside the extent, NaN outside (float32; float64 for float64 input).",
        OUTPUT_POLYGONS: "The kept objects as polygons with their probability statistics (GeoPackage).",
        OUTPUT_REPORT: "An HTML page: objects kept and removed and why, the kept area, the parameters and a "
                       "histogram of object areas. Opens in the Results Viewer.",
    }

    def name(self):
        return "prepareexport"

    def displayName(self):  # noqa: N802
        return self.tr("Prepare export")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>DARTS' postprocessing of one tile: from segmentation probabilities to a clean binary map of "
            "thaw slumps.</p>"
            "<ol><li>The quality mask keeps pixels of at least the chosen <b>quality level</b> "
            "(none = all pixels, low_quality = 1 and 2, high_quality = 2 only).</li>"
            "<li>Unless the level is none, that area is eroded by a disk of <b>mask erosion size</b> pixels, and a "
            "band of <b>edge erosion size</b> pixels (default: the erosion size; 0 = none) along the tile edges is "
            "dropped. The result is the <b>extent</b>.</li>"
            "<li>Pixels with probability &gt; <b>threshold</b> (DARTS' uint8 percent v where v &ge; 100 &times; threshold, "
            "so 50 passes 0.5) form objects (8-connected). Objects that touch a "
            "pixel outside the extent are removed whole (<b>boundary</b> = remove; clip reproduces upstream "
            "DARTS, which cuts them at the extent instead).</li>"
            "<li>Objects smaller than <b>minimum object size</b> pixels are removed (counted with 8-connectivity; "
            "4 reproduces upstream DARTS).</li></ol>"
            "<p><b>Probabilities</b>: float 0..1 (NaN or nodata = no prediction) or DARTS' uint8 percent export "
            "(0..100, nodata 255), detected from the data type (advanced: probability scale). "
            "<b>Quality mask</b> (optional): 0 invalid, 1 low, 2 high quality, on the same grid; without it every "
            "pixel with a prediction counts as high quality. <b>Ensemble subsets</b> (optional): more probability "
            "rasters processed the same way; each binarized result is written beside the binarized output as "
            "&lt;name&gt;-&lt;layer name&gt;.tif.</p>"
            "<p>Outputs: binarized (uint8 0/1), extent (uint8 0/1), optionally the probabilities masked to the extent "
            "(float32, float64 for float64 input; NaN outside), the kept objects as <b>polygons</b> (GeoPackage, "
            "with the statistics of polygonize) and an HTML <b>report</b> (objects kept, removed at the boundary, "
            "removed as too small, kept area, parameters, a histogram of object areas). "
            "DARTS' defaults: threshold 0.5, erosion 10, minimum size 32, low_quality.</p>"
            "<p><b>Exclusion mask</b> (optional; e.g. water or glaciers, where false positives are common): polygons "
            "in any CRS or a raster on the probabilities' grid. Objects with any pixel in it are removed whole "
            "(boundary = clip: their pixels in it are cut away, the rest is size-filtered); the report counts them "
            "as a reason of their own.</p>"
            "<p><b>Thresholds</b> (optional, e.g. 0.4,0.5,0.6; replaces the threshold): one binarized raster per "
            "threshold, written beside the binarized output as &lt;name&gt;-t0.40.tif (polygons likewise as "
            "&lt;name&gt;-t0.40.gpkg; the binarized and polygon outputs themselves then only give the names), the "
            "quality mask eroded once; the report compares the thresholds side by side.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.QUALITY_MASK, self.tr("Quality mask (0/1/2)"),
                                                            optional=True))
        self.add_postprocessing(self.THRESHOLD)
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.THRESHOLDS, self.tr("Several thresholds (e.g. 0.4,0.5,0.6; "
                                                                           "replaces the threshold)"),
                                                  optional=True, defaultValue=""), False,
                     "One binarized raster (and polygon file) per threshold, named <output>-t0.40.tif")
        self.add_postprocessing(self.MASK_EROSION_SIZE, self.EDGE_EROSION_SIZE, self.MIN_OBJECT_SIZE, self.QUALITY_LEVEL)
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.SUBSET_PROBABILITIES, self.tr("Ensemble subset probabilities"), QgsProcessing.SourceType.TypeRaster,
            optional=True))
        add_exclusion(self)
        self.add_postprocessing(self.BOUNDARY, self.SIZE_CONNECTIVITY, "DEVICE", self.PROBABILITY_SCALE)
        add_statistics_scale(self)
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_BINARIZED, self.tr("Binarized segmentation")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_EXTENT, self.tr("Extent")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.OUTPUT_PROBABILITIES, self.tr("Masked probabilities"), optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_POLYGONS, self.tr("Object polygons"), QgsProcessing.SourceType.TypeVectorPolygon,
            optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Report"), self.tr("HTML files (*.html)"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.OUTPUT_SUBSET_BINARIZED,
                                                         self.tr("Binarized ensemble subsets")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.OUTPUT_THRESHOLD_BINARIZED,
                                                         self.tr("Binarized segmentation per threshold")))
        self.addOutput(QgsProcessingOutputMultipleLayers(self.OUTPUT_THRESHOLD_POLYGONS,
                                                         self.tr("Object polygons per threshold")))

    def thresholds(self, parameters, context):
        """The THRESHOLDS, in the order given ([] when empty)."""
        from ..core.kernels.checks import parse_thresholds

        values = []
        for item, value in parse_thresholds(self.parameterAsString(parameters, self.THRESHOLDS, context),
                                            self.THRESHOLDS):
            if any(threshold_label(value) == threshold_label(other) for other in values):
                raise ValueError(f"{self.THRESHOLDS}: {item!r} is given twice")
            values.append(value)
        return values

    def run_files(self, parameters, context):
        """(core PrepareExportInputs, PrepareExportOutputs) of the run's parameters."""
        from ..core.files.layers import layer_name
        from ..core.products.prepare_export_files import PrepareExportInputs, PrepareExportOutputs

        inputs = PrepareExportInputs(self.raster_path(parameters, self.PROBABILITIES, context),
                                     self.raster_path(parameters, self.QUALITY_MASK, context, required=False) or None,
                                     self.subsets(parameters, context))
        polygons = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context) or None
        target, layer = geopackage_layer(polygons) if polygons else (None, None)
        if polygons and polygons.startswith("ogr:") and layer is None and self.thresholds(parameters, context):
            layer = layer_name(target)  # a layer of a GeoPackage named: refused with THRESHOLDS (plan_runs)
        outputs = PrepareExportOutputs(self.parameterAsOutputLayer(parameters, self.OUTPUT_BINARIZED, context),
                                       self.parameterAsOutputLayer(parameters, self.OUTPUT_EXTENT, context),
                                       self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
                                       or None, target, layer)
        return inputs, outputs

    def threshold_runs(self, parameters, context):
        """The core's ThresholdRuns: one for THRESHOLD, or one per THRESHOLDS, their files named
        beside the outputs."""
        from ..core.products.prepare_export_files import PrepareExportSettings, plan_runs

        inputs, outputs = self.run_files(parameters, context)
        return plan_runs(outputs, PrepareExportSettings(thresholds=tuple(self.thresholds(parameters, context))),
                         inputs.subsets)

    def input_paths(self, parameters, context):
        return super().input_paths(parameters, context) + [exclusion_file(self, parameters, context)]

    def subsets(self, parameters, context):
        """{name: path} of the ensemble subsets; the name (from the layer name) is used in
        variable and file names (core.products.export.subset_name: DARTS' probabilities-{subset} gives {subset})."""
        from ..core.products.export import subset_names

        layers = self.raster_files(parameters, self.SUBSET_PROBABILITIES, context)
        return dict(zip(subset_names(name for name, _ in layers), (source for _, source in layers)))

    def output_paths(self, parameters, context):
        paths = super().output_paths(parameters, context)
        for run in self.threshold_runs(parameters, context):
            detail = "" if run.threshold is None else f" (threshold {threshold_label(run.threshold)})"
            if run.threshold is not None:
                paths.append((self.OUTPUT_BINARIZED + detail, run.binarized))
                if run.polygons:
                    paths.append((self.OUTPUT_POLYGONS + detail, run.polygons))
            paths += [(f"{self.OUTPUT_SUBSET_BINARIZED} ('{name}'){detail}", path) for name, path in run.subsets.items()]
        return paths

    def execute(self, parameters, context, feedback, outputs):
        from ..core.products.prepare_export_files import PrepareExportSettings, prepare_export_files

        inputs, files = self.run_files(parameters, context)
        scratch_folder = os.path.dirname(os.path.abspath(files.binarized))
        settings = self.postprocess_settings(
            parameters, context, feedback, PrepareExportSettings,
            thresholds=tuple(self.thresholds(parameters, context)),
            exclude=exclusion_input(self, parameters, context,
                                    lambda: outputs.scratch(os.path.join(scratch_folder, "exclusion.gpkg"))),
            memory_limit_mb=memory_limit(self, parameters, context),
            dask_scheduler=scheduler_address(self, parameters, context))

        summary = prepare_export_files(inputs, files, settings, self.progress_reporter(feedback), files=outputs,
                                       tags=outputs.tags, log=self.log_to(feedback))
        return self.present(parameters, context, feedback, outputs, summary)

    def present(self, parameters, context, feedback, outputs, summary):
        """The QGIS part of a run the core has done: layers styled and loaded, the report, the log."""
        runs, several = summary.runs, summary.several
        polygons_stem = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context)
        results = {self.OUTPUT_EXTENT: summary.extent}
        style_on_load(context, summary.extent, "extent")
        if summary.probabilities:
            results[self.OUTPUT_PROBABILITIES] = summary.probabilities
            style_on_load(context, summary.probabilities, "probabilities")
        if several:  # the outputs themselves only give the names: load the files per threshold instead
            binarized_stem = self.parameterAsOutputLayer(parameters, self.OUTPUT_BINARIZED, context)
            self.load_instead(context, binarized_stem, [(run.binarized, f"t={threshold_label(run.threshold)}")
                                                        for run in runs],
                              self.tr("Binarized segmentation"), self.OUTPUT_THRESHOLD_BINARIZED)
            if polygons_stem:
                self.load_instead(context, polygons_stem, [(run.polygons, f"t={threshold_label(run.threshold)}")
                                                           for run in runs],
                                  self.tr("Object polygons"), self.OUTPUT_THRESHOLD_POLYGONS)
        subset_paths = []
        for run in runs:
            style_on_load(context, run.binarized, "binarized")
            for name, path in run.subsets.items():
                subset_paths.append(path)
                if context.willLoadLayerOnCompletion(run.binarized):
                    label = name if run.threshold is None else f"{name}, t={threshold_label(run.threshold)}"
                    context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                        self.tr("Binarized segmentation ({})").format(label), context.project(),
                        self.OUTPUT_SUBSET_BINARIZED))
                    style_on_load(context, path, "binarized")
            if run.polygons:
                style_on_load(context, polygons_stem if not several else run.polygons, "segments")
        if subset_paths:  # no empty OUTPUT_SUBSET_BINARIZED line in the results
            results[self.OUTPUT_SUBSET_BINARIZED] = subset_paths
        if several:
            results[self.OUTPUT_THRESHOLD_BINARIZED] = [run.binarized for run in runs]
            if polygons_stem:
                results[self.OUTPUT_THRESHOLD_POLYGONS] = [run.polygons for run in runs]
        else:
            results[self.OUTPUT_BINARIZED] = runs[0].binarized
            if polygons_stem:
                results[self.OUTPUT_POLYGONS] = polygons_stem
        report_path = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        if report_path:
            from ..core.products.report import TITLE, prepare_export_report

            with open(outputs.reserve(report_path), "w", encoding="utf-8") as handle:
                handle.write(prepare_export_report(summary, self.tr(TITLE)))
            results[self.OUTPUT_REPORT] = report_path
        feedback.setProgress(100)
        from ..core.products.report import summary_line

        for run in runs:
            detail = f" (threshold {threshold_label(run.threshold)})" if several else ""
            feedback.pushInfo(self.tr("{} object pixels kept{}, extent covers {} pixels.").format(
                run.kept_pixels, detail, summary.extent_pixels))
            feedback.pushInfo(summary_line(self.tr, run.counts, run.areas, summary.area_note) + detail)
        return results

    def load_instead(self, context, stem, files, title, output_name):
        """Load `files` ((path, label), ...) on completion in place of `stem`, which is not written."""
        if not context.willLoadLayerOnCompletion(stem):
            return
        layers = context.layersToLoadOnCompletion()
        layers.pop(stem, None)
        context.setLayersToLoadOnCompletion(layers)
        for path, label in files:
            context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                f"{title} ({label})", context.project(), output_name))


def describe_exclusion(exclusion):
    """core.products.prepare_export_files.describe_exclusion (imported when called)."""
    from ..core.products.prepare_export_files import describe_exclusion as describe

    return describe(exclusion)
