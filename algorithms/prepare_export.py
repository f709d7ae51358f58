"""darts:prepareexport — DARTS' whole postprocessing step on a probabilities raster."""

import functools
import os
import re

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessing,
)

from .base import BOUNDARIES, CONNECTIVITIES, QUALITY_LEVELS, DartsAlgorithm
from .blocks import add_block_parameters, block_plan, polygonize_in_blocks, run_blocks
from .polygon_options import add_statistics_scale, layout_of, statistics_probabilities
from .styles import style_on_load


class PrepareExportAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    QUALITY_MASK = "QUALITY_MASK"
    SUBSET_PROBABILITIES = "SUBSET_PROBABILITIES"
    THRESHOLD = "THRESHOLD"
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

    def name(self):
        return "prepareexport"

    def displayName(self):  # noqa: N802
        return self.tr("Prepare export (threshold, erode, clean objects)")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>DARTS' postprocessing of one tile: from segmentation probabilities to a clean binary map of "
            "thaw slumps.</p>"
            "<ol><li>The quality mask keeps pixels of at least the chosen <b>quality level</b> "
            "(none = all pixels, low_quality = 1 and 2, high_quality = 2 only).</li>"
            "<li>Unless the level is none, that area is eroded by a disk of <b>mask erosion size</b> pixels, and a "
            "band of <b>edge erosion size</b> pixels (default: the erosion size; 0 = none) along the tile edges is "
            "dropped. The result is the <b>extent</b>.</li>"
            "<li>Pixels with probability &gt; <b>threshold</b> form objects (8-connected). Objects that touch a "
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
            "(float32, float64 for float64 input; NaN outside), the kept objects as <b>polygons</b> (GeoPackage, with the statistics of "
            "polygonize) and an HTML <b>report</b> (objects kept, removed at the boundary, removed as too small, "
            "kept area, parameters, a histogram of object areas). "
            "DARTS' defaults: threshold 0.5, erosion 10, minimum size 32, low_quality.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.QUALITY_MASK, self.tr("Quality mask (0/1/2)"),
                                                            optional=True))
        self.add_threshold(self.THRESHOLD)
        self.add_int(self.MASK_EROSION_SIZE, "Mask erosion size (pixels)", 10)
        self.add_int(self.EDGE_EROSION_SIZE, "Edge erosion size (pixels, empty = mask erosion size)", None, optional=True)
        self.add_int(self.MIN_OBJECT_SIZE, "Minimum object size (pixels)", 32)
        self.add_enum(self.QUALITY_LEVEL, "Quality level", QUALITY_LEVELS, "low_quality")
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.SUBSET_PROBABILITIES, self.tr("Ensemble subset probabilities"), QgsProcessing.SourceType.TypeRaster,
            optional=True))
        self.add_enum(self.BOUNDARY, "Boundary objects", BOUNDARIES, "remove", advanced=True,
                      help_text="remove: drop objects touching the extent's border whole; clip: cut them (upstream)")
        self.add_enum(self.SIZE_CONNECTIVITY, "Connectivity for object sizes", CONNECTIVITIES, "8", advanced=True)
        self.add_device()
        self.add_scale()
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

    def subsets(self, parameters, context):
        """{name: path} of the ensemble subsets; the name (from the layer name) is used in
        variable and file names."""
        subsets = {}
        for layer_name, source in self.raster_files(parameters, self.SUBSET_PROBABILITIES, context):
            name = re.sub(r"[^A-Za-z0-9_]+", "_", layer_name).strip("_") or "subset"
            while name in subsets:
                name += "_"
            subsets[name] = source
        return subsets

    def output_paths(self, parameters, context):
        paths = super().output_paths(parameters, context)
        binarized = dict(paths).get(self.OUTPUT_BINARIZED)
        if binarized:
            paths += [(f"{self.OUTPUT_SUBSET_BINARIZED} ('{name}')", subset_path(binarized, name))
                      for name in self.subsets(parameters, context)]
        return paths

    def execute(self, parameters, context, feedback, outputs):
        import numpy as np

        from ..core import prepare_export
        from .raster_io import check_same_grid, grid_of, read_probabilities, read_quality

        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        probabilities_path = self.raster_path(parameters, self.PROBABILITIES, context)
        quality_path = self.raster_path(parameters, self.QUALITY_MASK, context, required=False)
        polygons_path = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context)
        report_path = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        subsets = self.subsets(parameters, context)

        feedback.setProgressText(self.tr("Reading and checking the rasters"))
        grid = grid_of(probabilities_path, self.PROBABILITIES)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height,
                           BYTES_PER_PIXEL + SUBSET_BYTES_PER_PIXEL * len(subsets))
        if block:
            from ..core.blockwise import read_probabilities_lazy, read_quality_lazy

            read_probabilities = functools.partial(read_probabilities_lazy, block=block)  # noqa: F811
            read_quality = functools.partial(read_quality_lazy, block=block)  # noqa: F811
        tile = {"probabilities": read_probabilities(probabilities_path, self.PROBABILITIES, scale=scale)}
        if quality_path:
            check_same_grid(self.PROBABILITIES, grid, self.QUALITY_MASK, grid_of(quality_path, self.QUALITY_MASK))
            tile["quality_data_mask"] = read_quality(quality_path, self.QUALITY_MASK)
        else:
            feedback.pushInfo(self.tr("No quality mask: every pixel with a prediction counts as high quality."))
            tile["quality_data_mask"] = np.where(np.isnan(tile["probabilities"]), 0, 2).astype(np.uint8)
        for name, path in subsets.items():
            what = f"{self.SUBSET_PROBABILITIES} '{name}'"
            check_same_grid(self.PROBABILITIES, grid, what, grid_of(path, what))
            tile[f"probabilities-{name}"] = read_probabilities(path, what, scale=scale)
        self.check_canceled(feedback)

        options = dict(
            bin_threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
            mask_erosion_size=self.parameterAsInt(parameters, self.MASK_EROSION_SIZE, context),
            edge_erosion_size=self.optional_int(parameters, self.EDGE_EROSION_SIZE, context),
            min_object_size=self.parameterAsInt(parameters, self.MIN_OBJECT_SIZE, context),
            quality_level=self.parameterAsEnumString(parameters, self.QUALITY_LEVEL, context),
            boundary=self.parameterAsEnumString(parameters, self.BOUNDARY, context),
            size_connectivity=int(self.parameterAsEnumString(parameters, self.SIZE_CONNECTIVITY, context)),
        )
        object_counts = {}
        result = prepare_export(tile, **options, ensemble_subsets=list(subsets),
                                device=self.resolve_device(parameters, context, feedback),
                                progress=self.progress_reporter(feedback, 10, 60), object_counts=object_counts)
        lazy_probabilities = tile["probabilities"] if block else None  # read again for polygon statistics
        del tile  # in memory: frees the probabilities read

        feedback.setProgressText(self.tr("Writing the outputs"))
        binarized_path = self.parameterAsOutputLayer(parameters, self.OUTPUT_BINARIZED, context)
        extent_path = self.parameterAsOutputLayer(parameters, self.OUTPUT_EXTENT, context)
        probabilities_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        rasters = {binarized_path: (result["binarized_segmentation"].astype("uint8"), None, "binarized"),
                   extent_path: (result["extent"], None, "extent")}
        results = {self.OUTPUT_BINARIZED: binarized_path, self.OUTPUT_EXTENT: extent_path}
        if probabilities_out:
            rasters[probabilities_out] = (result["probabilities"], float("nan"), "probabilities")
            results[self.OUTPUT_PROBABILITIES] = probabilities_out
        subset_paths = []
        for name in subsets:
            path = subset_path(binarized_path, name)
            rasters[path] = (result[f"binarized_segmentation-{name}"].astype("uint8"), None, None)
            subset_paths.append(path)
            if context.willLoadLayerOnCompletion(binarized_path):
                context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                    self.tr("Binarized segmentation ({})").format(name), context.project(), self.OUTPUT_SUBSET_BINARIZED))
                style_on_load(context, path, "binarized")
        results[self.OUTPUT_SUBSET_BINARIZED] = subset_paths
        writes = {path: (array, nodata) for path, (array, nodata, _) in rasters.items()}
        if block:
            from ..core.blockwise import any_prediction, require_prediction

            _, object_counts, kept, extent_pixels, has_prediction = run_blocks(
                self, parameters, context, feedback,
                lambda lock: [outputs.store(writes, grid, lock), object_counts, result["binarized_segmentation"].sum(),
                              result["extent"].sum(), any_prediction(lazy_probabilities)], start=10, span=88)
            require_prediction(has_prediction, self.PROBABILITIES)
        else:
            for path, (array, nodata) in writes.items():
                self.check_canceled(feedback)
                outputs.write(path, array, grid, nodata)
            kept, extent_pixels = result["binarized_segmentation"].sum(), result["extent"].sum()
        for path, (_, _, style) in rasters.items():
            if style:
                style_on_load(context, path, style)

        note = self.area_note(grid, feedback) if polygons_path or report_path else None
        if block and (polygons_path or report_path):
            # Objects and their areas from the binarized raster just written, read back block by
            # block; their statistics from the probabilities (the same inside objects as masked).
            from ..core.blockwise import read_binary_lazy

            binary = read_binary_lazy(outputs.stored[binarized_path], self.OUTPUT_BINARIZED, block)
        else:
            binary = result["binarized_segmentation"]
        if polygons_path:
            layout = layout_of(self, parameters, context)
            values = lazy_probabilities if block else result["probabilities"]
            if layout.statistics == "percent":  # DARTS' percent input as it is (polygon_options)
                values = statistics_probabilities(probabilities_path, self.PROBABILITIES, scale, block)
            if block:
                polygonize_in_blocks(self, parameters, context, feedback, outputs, polygons_path, binary, grid,
                                     values, 75, 20, layout)
            else:
                self.write_polygons(polygons_path, context, outputs, binary, grid, values,
                                    self.progress_reporter(feedback, 75, 20), layout=layout)
            results[self.OUTPUT_POLYGONS] = polygons_path

        if report_path:
            from ..core import object_areas

            areas = object_areas(binary, grid.geotransform, grid.crs)
            if block:
                (areas,) = run_blocks(self, parameters, context, feedback, lambda lock: [areas], 95, 4)
            inputs = {"probabilities": probabilities_path, "quality mask": quality_path or "(none: every pixel with a "
                      "prediction counts as high quality)", "probability scale": scale, **options}
            self.write_report(outputs.reserve(report_path), inputs, object_counts["binarized_segmentation"], grid, note,
                              areas, int(kept), int(extent_pixels))
            results[self.OUTPUT_REPORT] = report_path
        feedback.setProgress(100)
        feedback.pushInfo(self.tr("{} object pixels kept, extent covers {} pixels.").format(int(kept), int(extent_pixels)))
        return results

    def write_report(self, path, settings, counts, grid, area_note, areas, kept_pixels, extent_pixels):
        from .report import render_report

        if settings.get("edge_erosion_size") is None:
            settings["edge_erosion_size"] = f"{settings['mask_erosion_size']} (the mask erosion size)"
        page = render_report(self.tr("DARTS postprocessing report"), [*settings.items(), ("grid", grid.describe())],
                             counts, kept_objects=len(areas), kept_pixels=kept_pixels, kept_area_m2=float(areas.sum()),
                             extent_pixels=extent_pixels, object_areas_m2=areas, area_note=area_note)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(page)


def subset_path(binarized_path, name):
    """Where the binarized result of ensemble subset `name` goes: beside OUTPUT_BINARIZED."""
    stem, extension = os.path.splitext(binarized_path)
    return f"{stem}-{name}{extension}"


BYTES_PER_PIXEL = 14  # in memory (measured: ~13): float32 probabilities read and masked, quality, extent, objects
SUBSET_BYTES_PER_PIXEL = 9  # each ensemble subset: its probabilities read and masked, and its objects
