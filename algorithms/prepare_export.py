"""darts:prepareexport — DARTS' whole postprocessing step on a probabilities raster."""

import functools
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

from ..definitions import BOUNDARY_MODES, QUALITY_LEVELS
from .base import DartsAlgorithm
from .blocks import add_block_parameters, block_plan, polygonize_in_blocks, run_blocks
from .exclusion import EXCLUDE, MAX_EXCLUDED_SHARE, add_exclusion, exclusion_file, exclusion_input, warn_without_crs
from .parameters import threshold_label
from .polygon_options import add_statistics_scale, layout_of, statistics_probabilities
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
        MASK_EROSION_SIZE: "Radius (pixels) of the disk by which the area of the chosen quality level shrinks "
                           "(DARTS' default 10).",
        EDGE_EROSION_SIZE: "Width (pixels) of the band along the tile edges that is set invalid. Not set: the mask "
                           "erosion size; 0: no band.",
        MIN_OBJECT_SIZE: "Objects with fewer pixels are removed; an object of exactly this size stays (DARTS' "
                         "default 32).",
        QUALITY_LEVEL: "Which pixels of the quality mask are valid before the erosion (DARTS' pipeline: low and "
                       "high quality).",
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
        self.add_threshold(self.THRESHOLD)
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.THRESHOLDS, self.tr("Several thresholds (e.g. 0.4,0.5,0.6; "
                                                                           "replaces the threshold)"),
                                                  optional=True, defaultValue=""), False,
                     "One binarized raster (and polygon file) per threshold, named <output>-t0.40.tif")
        self.add_int(self.MASK_EROSION_SIZE, "Mask erosion size (pixels)", 10)
        self.add_int(self.EDGE_EROSION_SIZE, "Edge erosion size (pixels; Not set = mask erosion size)", None, optional=True)
        self.add_int(self.MIN_OBJECT_SIZE, "Minimum object size (pixels)", 32)
        self.add_enum(self.QUALITY_LEVEL, "Quality level", QUALITY_LEVELS, "low_quality")
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.SUBSET_PROBABILITIES, self.tr("Ensemble subset probabilities"), QgsProcessing.SourceType.TypeRaster,
            optional=True))
        add_exclusion(self)
        self.add_enum(self.BOUNDARY, "Boundary objects", BOUNDARY_MODES, "remove", advanced=True,
                      help_text="remove: drop objects touching the extent's border whole; clip: cut them (upstream)")
        self.add_size_connectivity()
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

    def runs(self, parameters, context):
        """(threshold or None, binarized path, polygons path or None) per binarized result: one for
        THRESHOLD, or one per THRESHOLDS, their files named beside the outputs."""
        binarized = self.parameterAsOutputLayer(parameters, self.OUTPUT_BINARIZED, context)
        polygons = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context) or None
        thresholds = self.thresholds(parameters, context)
        if not thresholds:
            return [(None, binarized, polygons)]
        if polygons and polygons.startswith("ogr:"):
            raise ValueError(f"{self.OUTPUT_POLYGONS}: with {self.THRESHOLDS}, give a GeoPackage file (one is written "
                             f"per threshold beside it), not a layer of an existing GeoPackage")
        return [(value, threshold_path(binarized, value), polygons and threshold_path(polygons, value))
                for value in thresholds]

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
        subsets = self.subsets(parameters, context)
        for threshold, binarized, polygons in self.runs(parameters, context):
            detail = "" if threshold is None else f" (threshold {threshold_label(threshold)})"
            if threshold is not None:
                paths.append((self.OUTPUT_BINARIZED + detail, binarized))
                if polygons:
                    paths.append((self.OUTPUT_POLYGONS + detail, polygons))
            paths += [(f"{self.OUTPUT_SUBSET_BINARIZED} ('{name}'){detail}", subset_path(binarized, name))
                      for name in subsets]
        return paths

    def execute(self, parameters, context, feedback, outputs):
        import numpy as np

        from ..core import prepare_export_thresholds
        from ..core.files.geotiff import probability_scale_of
        from .raster_io import check_same_grid, grid_of, read_probabilities, read_quality

        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        probabilities_path = self.raster_path(parameters, self.PROBABILITIES, context)
        quality_path = self.raster_path(parameters, self.QUALITY_MASK, context, required=False)
        report_path = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context)
        subsets = self.subsets(parameters, context)
        runs = self.runs(parameters, context)
        several = runs[0][0] is not None  # THRESHOLDS given
        binarized_stem = self.parameterAsOutputLayer(parameters, self.OUTPUT_BINARIZED, context)
        polygons_stem = self.parameterAsOutputLayer(parameters, self.OUTPUT_POLYGONS, context)
        scratch_folder = os.path.dirname(os.path.abspath(binarized_stem))

        feedback.setProgressText(self.tr("Reading and checking the rasters"))
        grid = grid_of(probabilities_path, self.PROBABILITIES)
        probability_scale = probability_scale_of(probabilities_path, self.PROBABILITIES, scale)
        self.warn_percent(probabilities_path, self.PROBABILITIES, scale, feedback)
        for name, path in subsets.items():
            if probability_scale_of(path, f"{self.SUBSET_PROBABILITIES} '{name}'", scale) != probability_scale:
                raise ValueError(f"{self.SUBSET_PROBABILITIES} '{name}' is read as a different probability scale than "
                                 f"{self.PROBABILITIES} ({probability_scale}): give ensemble members of the same "
                                 f"kind, or set {self.PROBABILITY_SCALE}")
        self.note_darts_postprocessed(probabilities_path, feedback)
        exclusion = exclusion_input(self, parameters, context,
                                    lambda: outputs.scratch(os.path.join(scratch_folder, "exclusion.gpkg")))
        per_pixel = (BYTES_PER_PIXEL + SUBSET_BYTES_PER_PIXEL * len(subsets) + (1 if exclusion else 0)
                     + THRESHOLD_BYTES_PER_PIXEL * (len(runs) - 1) * (1 + len(subsets)))
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, per_pixel)
        if block:
            from ..core.lazy.blockwise import read_probabilities_lazy, read_quality_lazy

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
        exclude = self.read_exclusion(exclusion, grid, block, outputs, scratch_folder, feedback)
        self.check_canceled(feedback)

        options = dict(
            bin_threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
            mask_erosion_size=self.parameterAsInt(parameters, self.MASK_EROSION_SIZE, context),
            edge_erosion_size=self.optional_int(parameters, self.EDGE_EROSION_SIZE, context),
            min_object_size=self.parameterAsInt(parameters, self.MIN_OBJECT_SIZE, context),
            quality_level=self.parameterAsEnumString(parameters, self.QUALITY_LEVEL, context),
            boundary=self.parameterAsEnumString(parameters, self.BOUNDARY, context),
            size_connectivity=int(self.parameterAsEnumString(parameters, self.SIZE_CONNECTIVITY, context)),
            max_excluded_share=self.parameterAsDouble(parameters, MAX_EXCLUDED_SHARE, context),
        )
        thresholds = [options["bin_threshold"]] if not several else [threshold for threshold, _, _ in runs]
        object_counts = {}
        by_threshold = prepare_export_thresholds(
            tile, thresholds, **{k: v for k, v in options.items() if k != "bin_threshold"},
            ensemble_subsets=list(subsets), device=self.resolve_device(parameters, context, feedback), exclude=exclude,
            progress=self.progress_reporter(feedback, 10, 60), object_counts=object_counts,
            probability_scale=probability_scale)
        results = [by_threshold[threshold] for threshold in thresholds]
        object_counts = [object_counts[threshold]["binarized_segmentation"] for threshold in thresholds]
        lazy_probabilities = tile["probabilities"] if block else None  # read again for polygon statistics
        del tile, by_threshold  # in memory: frees the probabilities read

        feedback.setProgressText(self.tr("Writing the outputs"))
        extent_path = self.parameterAsOutputLayer(parameters, self.OUTPUT_EXTENT, context)
        probabilities_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_PROBABILITIES, context)
        first = results[0]  # the extent and masked probabilities are the same for every threshold
        rasters = {extent_path: (first["extent"], None, "extent")}
        outputs_of_run = {self.OUTPUT_EXTENT: extent_path}
        if probabilities_out:
            rasters[probabilities_out] = (first["probabilities"], float("nan"), "probabilities")
            outputs_of_run[self.OUTPUT_PROBABILITIES] = probabilities_out
        if several:  # the outputs themselves only give the names: load the files per threshold instead
            self.load_instead(context, binarized_stem, [(path, f"t={threshold_label(t)}") for t, path, _ in runs],
                              self.tr("Binarized segmentation"), self.OUTPUT_THRESHOLD_BINARIZED)
            if polygons_stem:
                self.load_instead(context, polygons_stem, [(path, f"t={threshold_label(t)}") for t, _, path in runs],
                                  self.tr("Object polygons"), self.OUTPUT_THRESHOLD_POLYGONS)
        subset_paths = []
        for (threshold, binarized_path, _), result in zip(runs, results):
            rasters[binarized_path] = (_as_uint8(result["binarized_segmentation"]), None, "binarized")
            for name in subsets:
                path = subset_path(binarized_path, name)
                rasters[path] = (_as_uint8(result[f"binarized_segmentation-{name}"]), None, None)
                subset_paths.append(path)
                if context.willLoadLayerOnCompletion(binarized_path):
                    label = name if threshold is None else f"{name}, t={threshold_label(threshold)}"
                    context.addLayerToLoadOnCompletion(path, QgsProcessingContext.LayerDetails(
                        self.tr("Binarized segmentation ({})").format(label), context.project(),
                        self.OUTPUT_SUBSET_BINARIZED))
                    style_on_load(context, path, "binarized")
        if subset_paths:  # no empty OUTPUT_SUBSET_BINARIZED line in the results
            outputs_of_run[self.OUTPUT_SUBSET_BINARIZED] = subset_paths
        if several:
            outputs_of_run[self.OUTPUT_THRESHOLD_BINARIZED] = [path for _, path, _ in runs]
        else:
            outputs_of_run[self.OUTPUT_BINARIZED] = runs[0][1]
        writes = {path: (array, nodata) for path, (array, nodata, _) in rasters.items()}
        kept = [result["binarized_segmentation"].sum() for result in results]
        if block:
            from ..core.lazy.blockwise import any_prediction, require_prediction

            _, object_counts, extent_pixels, has_prediction, *kept = run_blocks(
                self, parameters, context, feedback,
                lambda lock: [outputs.store(writes, grid, lock), object_counts, first["extent"].sum(),
                              any_prediction(lazy_probabilities), *kept], start=10, span=88)
            require_prediction(has_prediction, self.PROBABILITIES)
        else:
            for path, (array, nodata) in writes.items():
                self.check_canceled(feedback)
                outputs.write(path, array, grid, nodata)
            extent_pixels = first["extent"].sum()
        for path, (_, _, style) in rasters.items():
            if style:
                style_on_load(context, path, style)
        if several:
            for threshold, path, _ in runs:
                tag_threshold(outputs.reserved(path), threshold)

        polygon_paths = [path for _, _, path in runs if path]
        note = self.area_note(grid, feedback)
        binaries = []
        layout = layout_of(self, parameters, context)
        values = lazy_probabilities if block else first["probabilities"]
        if polygon_paths and layout.statistics == "percent":  # DARTS' percent input as it is (polygon_options)
            values = statistics_probabilities(probabilities_path, self.PROBABILITIES, scale, block)
        for index, ((threshold, binarized_path, polygons_path), result) in enumerate(zip(runs, results)):
            if block:
                # Objects and their areas from the binarized raster just written, read back block by
                # block; their statistics from the probabilities (the same inside objects as masked).
                from ..core.lazy.blockwise import read_binary_lazy

                binaries.append(read_binary_lazy(outputs.stored[binarized_path], self.OUTPUT_BINARIZED, block))
            else:
                binaries.append(result["binarized_segmentation"])
            if polygons_path:
                start, span = 75 + 20 * index / len(runs), 20 / len(runs)
                if block:
                    polygonize_in_blocks(self, parameters, context, feedback, outputs, polygons_path, binaries[-1], grid,
                                         values, start, span, layout)
                else:
                    self.write_polygons(polygons_path, context, outputs, binaries[-1], grid, values,
                                        self.progress_reporter(feedback, start, span), layout=layout)
                if threshold is not None:
                    tag_threshold(outputs.reserved(polygons_path), threshold)
        if polygon_paths:
            outputs_of_run[self.OUTPUT_THRESHOLD_POLYGONS if several else self.OUTPUT_POLYGONS] = \
                polygon_paths if several else polygon_paths[0]

        from ..core import object_areas

        areas = [object_areas(binary, grid.geotransform, grid.crs) for binary in binaries]
        if block:
            areas = list(run_blocks(self, parameters, context, feedback, lambda lock: areas, 95, 4))
        if report_path:
            inputs = {"probabilities": probabilities_path, "quality mask": quality_path or "(none: every pixel with a "
                      "prediction counts as high quality)", "probability scale": scale,
                      "exclusion mask": describe_exclusion(exclusion), **options}
            if several:
                del inputs["bin_threshold"]
                inputs["thresholds"] = ", ".join(threshold_label(t) for t in thresholds)
            self.write_report(outputs.reserve(report_path), inputs, object_counts, grid, note, areas,
                              [int(k) for k in kept], int(extent_pixels), thresholds if several else None)
            outputs_of_run[self.OUTPUT_REPORT] = report_path
        feedback.setProgress(100)
        from .report import summary

        for threshold, pixels, counts, objects_areas in zip(thresholds, kept, object_counts, areas):
            detail = f" (threshold {threshold_label(threshold)})" if several else ""
            feedback.pushInfo(self.tr("{} object pixels kept{}, extent covers {} pixels.").format(
                int(pixels), detail, int(extent_pixels)))
            feedback.pushInfo(summary(self.tr, counts, objects_areas, note) + detail)
        return outputs_of_run

    def read_exclusion(self, exclusion, grid, block, outputs, scratch_folder, feedback):
        """The EXCLUDE mask on the probabilities' grid (lazy block by block), or None."""
        if not exclusion:
            return None
        from ..core.files.exclusion import exclusion_mask
        from ..core.lazy.blockwise import exclusion_mask_lazy

        path, layer, where = exclusion
        feedback.pushInfo(self.tr("Exclusion mask: {}").format(describe_exclusion(exclusion)))
        warn_without_crs(self, exclusion, feedback)
        shape, options = (grid.height, grid.width), dict(layer=layer, where=where, what=self.EXCLUDE)
        if block:
            return exclusion_mask_lazy(path, shape, grid.transform_to_write, grid.crs, block,
                                       outputs.scratch(os.path.join(scratch_folder, "exclusion.tif")), **options)
        return exclusion_mask(path, shape, grid.transform_to_write, grid.crs, **options)

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

    def write_report(self, path, settings, counts, grid, area_note, areas, kept_pixels, extent_pixels, thresholds=None):
        """The HTML report: one threshold's counts and area histogram, or (`thresholds`) the
        thresholds compared side by side; `counts`, `areas` and `kept_pixels` hold one entry
        per threshold."""
        from .report import render_report, render_threshold_report

        if settings.get("edge_erosion_size") is None:
            settings["edge_erosion_size"] = f"{settings['mask_erosion_size']} (the mask erosion size)"
        parameters = [*settings.items(), ("grid", grid.describe())]
        title = self.tr("DARTS postprocessing report")
        if thresholds:
            page = render_threshold_report(title, parameters, [
                dict(threshold=threshold_label(threshold), counts=count, kept_objects=len(area), kept_pixels=pixels,
                     kept_area_m2=float(area.sum()))
                for threshold, count, area, pixels in zip(thresholds, counts, areas, kept_pixels)],
                extent_pixels=extent_pixels, area_note=area_note)
        else:
            page = render_report(title, parameters, counts[0], kept_objects=len(areas[0]), kept_pixels=kept_pixels[0],
                                 kept_area_m2=float(areas[0].sum()), extent_pixels=extent_pixels,
                                 object_areas_m2=areas[0], area_note=area_note)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(page)


def _as_uint8(binarized):
    """A binarized result as uint8 0/1 for writing: an in-memory bool array's own bytes (a
    view, no copy), a lazy one converted block by block."""
    import numpy as np

    if isinstance(binarized, np.ndarray) and binarized.dtype == bool:
        return binarized.view(np.uint8)
    return binarized.astype("uint8")


def subset_path(binarized_path, name):
    """Where the binarized result of ensemble subset `name` goes: beside OUTPUT_BINARIZED."""
    stem, extension = os.path.splitext(binarized_path)
    return f"{stem}-{name}{extension}"


def threshold_path(path, threshold):
    """Where the result of one of THRESHOLDS goes: <stem>-t0.40<extension> beside `path`."""
    stem, extension = os.path.splitext(path)
    return f"{stem}-t{threshold_label(threshold)}{extension}"


def describe_exclusion(exclusion):
    if not exclusion:
        return "(none)"
    path, layer, where = exclusion
    return path + (f", layer {layer}" if layer else "") + (f", features where {where}" if where else "")


def tag_threshold(path, threshold):
    """Record the file's own threshold under DARTS' key (a GeoTIFF tag; a GeoPackage's and its
    layer's metadata), replacing the run's THRESHOLD that every output was tagged with."""
    from ..core.files.tags import PREFIX, UPSTREAM_KEYS, write_metadata

    write_metadata(path, {PREFIX + UPSTREAM_KEYS["threshold"]: threshold_label(threshold)})


BYTES_PER_PIXEL = 14  # in memory (measured: ~13): float32 probabilities read and masked, quality, extent, objects
SUBSET_BYTES_PER_PIXEL = 9  # each ensemble subset: its probabilities read and masked, and its objects
THRESHOLD_BYTES_PER_PIXEL = 2  # each further threshold, per layer: its objects (bool) and their uint8 copy
