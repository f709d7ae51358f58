"""darts:exporttile — the files the DARTS pipeline writes for a tile, from a prepareexport run."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingOutputFile,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterLayer,
)

from .base import DartsAlgorithm
from .blocks import add_block_parameters, block_plan
from .polygon_options import add_polygon_layout, layout_of
from .styles import style_on_load


class ExportTileAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    BINARIZED = "BINARIZED"
    EXTENT = "EXTENT"
    SUBSET_PROBABILITIES = "SUBSET_PROBABILITIES"
    SUBSET_BINARIZED = "SUBSET_BINARIZED"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    HELP = {
        PROBABILITIES: "The probabilities the tile was binarized from (float 0..1 or DARTS' uint8 percent).",
        BINARIZED: "The binarized output of 'Prepare export' (0/1).",
        EXTENT: "The extent output of 'Prepare export' (0/1).",
        SUBSET_PROBABILITIES: "Ensemble members' probabilities, as given to 'Prepare export'; each is written as "
                              "probabilities-<subset>.tif (DARTS' probabilities-<subset> gives <subset>).",
        SUBSET_BINARIZED: "'Prepare export''s binarized ensemble subsets (its OUTPUT_SUBSET_BINARIZED), found for "
                          "each subset by the name ending in -<subset>.",
        OUTPUT_FOLDER: "The tile folder; files of the same names in it are replaced.",
    }
    # Single files of the folder, for chaining in models.
    OUTPUTS = {"probabilities": ("OUTPUT_PROBABILITIES", QgsProcessingOutputRasterLayer, "probabilities.tif"),
               "binarized": ("OUTPUT_BINARIZED", QgsProcessingOutputRasterLayer, "binarized.tif"),
               "extent": ("OUTPUT_EXTENT", QgsProcessingOutputRasterLayer, "extent.tif"),
               "segments": ("OUTPUT_SEGMENTS", QgsProcessingOutputVectorLayer, "prediction_segments.gpkg"),
               "extent_polygons": ("OUTPUT_EXTENT_POLYGONS", QgsProcessingOutputVectorLayer, "prediction_extent.gpkg"),
               "thumbnail": ("OUTPUT_THUMBNAIL", QgsProcessingOutputFile, "thumbnail.jpg"),
               "inference": ("OUTPUT_METADATA", QgsProcessingOutputFile, "darts_inference.json"),
               "quicklook": ("OUTPUT_QUICKLOOK", QgsProcessingOutputFile, "quicklook.png"),
               "segments_parquet": ("OUTPUT_SEGMENTS_PARQUET", QgsProcessingOutputFile, "prediction_segments.parquet"),
               "extent_parquet": ("OUTPUT_EXTENT_PARQUET", QgsProcessingOutputFile, "prediction_extent.parquet")}
    # The files of the ensemble subsets, a list each (only when subsets are given).
    SUBSET_OUTPUTS = {"probabilities": ("OUTPUT_SUBSET_PROBABILITIES", "probabilities-<subset>.tif"),
                      "binarized": ("OUTPUT_SUBSET_BINARIZED", "binarized-<subset>.tif"),
                      "segments": ("OUTPUT_SUBSET_SEGMENTS", "prediction_segments-<subset>.gpkg"),
                      "segments_parquet": ("OUTPUT_SUBSET_SEGMENTS_PARQUET", "prediction_segments-<subset>.parquet")}

    def name(self):
        return "exporttile"

    def displayName(self):  # noqa: N802
        return self.tr("Export DARTS tile folder")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Writes the files DARTS' exporter writes for a tile, under its names, into the output folder, from "
            "the outputs of a prepareexport run (binarized, extent) and its probabilities:</p><ul>"
            "<li><b>probabilities.tif</b>: uint8 percent, int(p &times; 100) truncated, nodata 255 (also outside "
            "the extent), LZW. DARTS percent input is copied unchanged.</li>"
            "<li><b>binarized.tif</b>: uint8 0/1, LZW.</li>"
            "<li><b>prediction_segments.gpkg</b>: one MultiPolygon per object (advanced: <b>polygon features</b> = "
            "parts writes one Polygon per 4-connected part, as upstream) with Region_ID, min, max, mean, median, "
            "std, npixel (Integer64, statistics as DARTS computes them: of the uint8 percent values, min and max "
            "integers 0..100) and area_m2; geometry column geom.</li>"
            "<li><b>prediction_extent.gpkg</b>: the extent as polygons, with the same fields.</li>"
            "<li><b>prediction_segments.parquet</b>, <b>prediction_extent.parquet</b>: GeoParquet copies, which "
            "DARTS' completeness check expects; written when GDAL has the Parquet driver or Python has pyarrow, "
            "else skipped (the log says so).</li>"
            "<li><b>thumbnail.jpg</b>: an overview, probabilities in grey (outside the extent dark blue), the "
            "objects' outlines red and the extent's border light blue.</li>"
            "<li><b>darts_inference.json</b>: the run's settings under DARTS' keys (DARTS_tileid, "
            "DARTS_modelfiles, DARTS_binarizethreshold, DARTS_maskerosion, DARTS_edgeerosion, DARTS_mmu, "
            "DARTS_qualitymask, DARTS_tpiouter, DARTS_tpiinner, DARTS_patchsize, DARTS_overlap, DARTS_reflection, "
            "DARTS_exportdate), numbers as numbers; a model setting the inputs' tags do not give is null.</li>"
            "<li>With <b>ensemble subsets</b>: <b>probabilities-&lt;subset&gt;.tif</b>, "
            "<b>binarized-&lt;subset&gt;.tif</b>, <b>prediction_segments-&lt;subset&gt;.gpkg</b> (and .parquet) per "
            "subset. The subset's name comes from its probabilities layer (DARTS' probabilities-&lt;subset&gt; "
            "gives &lt;subset&gt;), its binarized raster is the one whose name ends in -&lt;subset&gt; (as "
            "prepareexport names them).</li>"
            "<li>The plugin's own, which DARTS does not write: <b>extent.tif</b> (uint8 0/1) and "
            "<b>quicklook.png</b> (objects filled red).</li></ul>"
            "<p>Every file carries DARTS_* tags (GDAL metadata; the JPEG's in its comment): the export date, the "
            "tile id (from the inputs' tags, else the folder's name), the postprocessing settings found in the "
            "inputs, and the parameters of this run; the rasters upstream's band descriptions.</p>"
            "<p>Files of the same name in the folder are replaced; all files appear together or none does.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BINARIZED, self.tr("Binarized segmentation (0/1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.EXTENT, self.tr("Extent (0/1)")))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.SUBSET_PROBABILITIES, self.tr("Ensemble subset probabilities"), QgsProcessing.SourceType.TypeRaster,
            optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.SUBSET_BINARIZED, self.tr("Binarized ensemble subsets (from Prepare export)"),
            QgsProcessing.SourceType.TypeRaster, optional=True))
        self.add_scale()
        add_polygon_layout(self)
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Tile folder")))
        for name, kind, filename in self.OUTPUTS.values():
            self.addOutput(kind(name, self.tr(filename)))
        for name, filename in self.SUBSET_OUTPUTS.values():
            self.addOutput(QgsProcessingOutputMultipleLayers(name, self.tr(filename)))

    def subsets(self, parameters, context):
        """{subset name: (probabilities file, binarized file)} of the SUBSET_PROBABILITIES and
        SUBSET_BINARIZED layers (core.products.export.pair_subsets)."""
        from ..core.products.export import pair_subsets

        return pair_subsets(self.raster_files(parameters, self.SUBSET_PROBABILITIES, context),
                            self.raster_files(parameters, self.SUBSET_BINARIZED, context),
                            (self.SUBSET_PROBABILITIES, self.SUBSET_BINARIZED))

    def execute(self, parameters, context, feedback, outputs):
        from ..core.files.tags import PREFIX, inference_record
        from ..core.products.export import export_bytes, export_sources, export_tile_files, tile_layout
        from .blocks import DASK_SCHEDULER

        paths = {name: self.raster_path(parameters, name, context)
                 for name in (self.PROBABILITIES, self.BINARIZED, self.EXTENT)}
        subsets = self.subsets(parameters, context)
        grid, _ = export_sources(paths[self.PROBABILITIES], paths[self.BINARIZED], paths[self.EXTENT], subsets)
        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        self.warn_percent(paths[self.PROBABILITIES], self.PROBABILITIES, scale, feedback)
        self.area_note(grid, feedback)
        folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        # DARTS names a tile's folder after the tile: its id when the inputs' tags have none.
        outputs.tags.setdefault(PREFIX + "tileid", os.path.basename(os.path.abspath(folder)))
        inference_record(outputs.tags)  # a tag that darts_inference.json cannot hold fails before any work
        layout = tile_layout(layout_of(self, parameters, context).parts, outputs.tags)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, export_bytes(len(subsets)))
        self.check_canceled(feedback)
        written = export_tile_files(paths[self.PROBABILITIES], paths[self.BINARIZED], paths[self.EXTENT], folder,
                                    subsets=subsets, scale=scale, parts=layout.parts, tags=outputs.tags, block=block,
                                    address=self.parameterAsString(parameters, DASK_SCHEDULER, context).strip(),
                                    files=outputs, progress=self.progress_reporter(feedback, 5, 95))
        self.report_parquet(written, subsets, feedback)
        results = {self.OUTPUT_FOLDER: folder}
        results.update({name: written[kind] for kind, (name, _, _) in self.OUTPUTS.items() if kind in written})
        for kind, (name, _) in self.SUBSET_OUTPUTS.items():
            files = [written.get(f"{kind}-{subset}") for subset in subsets]
            if files and all(files):  # no empty list in the results
                results[name] = files
        for kind, label in (("extent_polygons", "Prediction extent"), ("segments", "Prediction segments")):
            context.addLayerToLoadOnCompletion(written[kind], QgsProcessingContext.LayerDetails(
                self.tr(label), context.project(), self.OUTPUTS[kind][0]))
            style_on_load(context, written[kind], kind)
        feedback.pushInfo(self.tr("Tile written to {}").format(os.path.abspath(folder)))
        return results

    def report_parquet(self, written, subsets, feedback):
        """Say in the log whether the GeoParquet twins were written, and why not."""
        from ..core.files.geoparquet import geoparquet_support
        from ..core.products.export import parquet_names

        names = ", ".join(parquet_names(subsets))
        if any(kind.startswith(("segments_parquet", "extent_parquet")) for kind in written):
            feedback.pushInfo(self.tr("GeoParquet written: {} (with {}).").format(names, geoparquet_support()[0]))
        else:
            feedback.pushWarning(self.tr("Skipped {} (DARTS' completeness check expects them): {}. Install pyarrow "
                                         "into QGIS's Python, or use a GDAL with the Parquet driver, to get them.")
                                 .format(names, geoparquet_support()[1]))
