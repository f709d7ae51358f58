"""darts:exporttile — the files the DARTS pipeline writes for a tile, from a prepareexport run."""

import dataclasses
import os

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingOutputFile,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import DartsAlgorithm
from .blocks import add_block_parameters, block_plan, run_blocks
from .styles import style_on_load


class ExportTileAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    BINARIZED = "BINARIZED"
    EXTENT = "EXTENT"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    HELP = {
        PROBABILITIES: "The probabilities the tile was binarized from (float 0..1 or DARTS' uint8 percent).",
        BINARIZED: "The binarized output of 'Prepare export' (0/1).",
        EXTENT: "The extent output of 'Prepare export' (0/1).",
        OUTPUT_FOLDER: "The tile folder; files of the same names in it are replaced.",
    }
    # Single files of the folder, for chaining in models.
    OUTPUTS = {"probabilities": ("OUTPUT_PROBABILITIES", QgsProcessingOutputRasterLayer, "probabilities.tif"),
               "binarized": ("OUTPUT_BINARIZED", QgsProcessingOutputRasterLayer, "binarized.tif"),
               "extent": ("OUTPUT_EXTENT", QgsProcessingOutputRasterLayer, "extent.tif"),
               "segments": ("OUTPUT_SEGMENTS", QgsProcessingOutputVectorLayer, "prediction_segments.gpkg"),
               "extent_polygons": ("OUTPUT_EXTENT_POLYGONS", QgsProcessingOutputVectorLayer, "prediction_extent.gpkg"),
               "quicklook": ("OUTPUT_QUICKLOOK", QgsProcessingOutputFile, "quicklook.png")}

    def name(self):
        return "exporttile"

    def displayName(self):  # noqa: N802
        return self.tr("Export DARTS tile folder")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Writes the files the DARTS pipeline writes for a tile into the output folder, from the outputs of "
            "a prepareexport run (binarized, extent) and its probabilities:</p><ul>"
            "<li><b>probabilities.tif</b>: uint8 percent, int(p &times; 100) truncated, nodata 255 (also outside "
            "the extent), LZW. DARTS percent input is copied unchanged.</li>"
            "<li><b>binarized.tif</b> and <b>extent.tif</b>: uint8 0/1, LZW.</li>"
            "<li><b>prediction_segments.gpkg</b>: one polygon per object with Region_ID, min, max, mean, median, "
            "std (of the probabilities, 0..1), npixel and area_m2.</li>"
            "<li><b>prediction_extent.gpkg</b>: the extent as polygons.</li>"
            "<li><b>quicklook.png</b>: a small overview (probabilities grey, outside the extent blue, objects "
            "red).</li></ul>"
            "<p>Files of the same name in the folder are replaced; all files appear together or none does.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BINARIZED, self.tr("Binarized segmentation (0/1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.EXTENT, self.tr("Extent (0/1)")))
        self.add_scale()
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Tile folder")))
        for name, kind, filename in self.OUTPUTS.values():
            self.addOutput(kind(name, self.tr(filename)))

    def execute(self, parameters, context, feedback, outputs):
        from ..core import export_tile
        from .raster_io import check_same_grid, grid_of, read_binary, read_probabilities_for_export

        paths = {name: self.raster_path(parameters, name, context)
                 for name in (self.PROBABILITIES, self.BINARIZED, self.EXTENT)}
        grid = grid_of(paths[self.BINARIZED], self.BINARIZED)
        for name in (self.PROBABILITIES, self.EXTENT):
            check_same_grid(self.BINARIZED, grid, name, grid_of(paths[name], name))
        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        self.area_note(grid, feedback)
        folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, BYTES_PER_PIXEL)
        if block:
            written = self.export_in_blocks(parameters, context, feedback, outputs, paths, grid, scale, folder, block)
        else:
            tile = {"probabilities": read_probabilities_for_export(paths[self.PROBABILITIES], self.PROBABILITIES, scale),
                    "binarized_segmentation": read_binary(paths[self.BINARIZED], self.BINARIZED),
                    "extent": read_binary(paths[self.EXTENT], self.EXTENT)}
            self.check_canceled(feedback)
            written = export_tile(tile, folder, grid.geotransform, grid.crs, inputs=list(paths.values()),
                                  progress=self.progress_reporter(feedback, 10, 90))
        results = {self.OUTPUT_FOLDER: folder}
        for kind, (name, _, _) in self.OUTPUTS.items():
            results[name] = written[kind]
        for kind, label in (("extent_polygons", "Prediction extent"), ("segments", "Prediction segments")):
            context.addLayerToLoadOnCompletion(written[kind], QgsProcessingContext.LayerDetails(
                self.tr(label), context.project(), self.OUTPUTS[kind][0]))
            style_on_load(context, written[kind], kind)
        feedback.pushInfo(self.tr("Tile written to {}").format(os.path.abspath(folder)))
        return results

    def export_in_blocks(self, parameters, context, feedback, outputs, paths, grid, scale, folder, block):
        """The tile files of rasters larger than MEMORY_LIMIT, written block by block, with the
        same contents as core.export_tile writes in memory."""
        import dask
        import dask.array as da
        import numpy as np

        from ..core import to_percent
        from ..core.chunked_polygons import polygonize_lazy
        from ..core.blockwise import read_binary_lazy, read_lazy, read_probabilities_lazy
        from ..core.export import PERCENT_NODATA, TILE_FILES, quicklook_of_samples, quicklook_step

        files = {kind: os.path.join(folder, name) for kind, name in TILE_FILES.items()}
        # As export_tile in memory: the tile files always carry a geotransform (GDAL's default too).
        tile_grid = dataclasses.replace(grid, has_geotransform=True)
        probabilities = read_probabilities_lazy(paths[self.PROBABILITIES], self.PROBABILITIES, block, scale)
        binarized = read_binary_lazy(paths[self.BINARIZED], self.BINARIZED, block).astype(np.uint8)
        extent = read_binary_lazy(paths[self.EXTENT], self.EXTENT, block).astype(np.uint8)
        raw, _ = read_lazy(paths[self.PROBABILITIES], block, self.PROBABILITIES)
        percent_input = raw.dtype == np.uint8 and scale != "fraction"  # DARTS percent: copied, not re-derived
        if percent_input:
            percent = da.where(da.isnan(probabilities), PERCENT_NODATA, raw).astype(np.uint8)
        else:
            percent = probabilities.map_blocks(to_percent, dtype=np.uint8, meta=np.zeros((0, 0), np.uint8))
        percent = da.where(extent == 0, PERCENT_NODATA, percent).astype(np.uint8)
        # Statistics as in memory: of the float probabilities, or of the percent values.
        values = (da.where(percent == PERCENT_NODATA, np.nan, percent / np.float32(100)) if percent_input
                  else probabilities)

        step = quicklook_step(percent.shape)
        height, width = percent.shape
        padded = da.pad(binarized != 0, ((0, -height % step), (0, -width % step)), constant_values=False)
        cells = da.coarsen(np.any, padded.rechunk(step * max(1, block // step)), {0: step, 1: step})
        quicklook = dask.delayed(quicklook_of_samples)(percent[::step, ::step], extent[::step, ::step], cells)

        def build(lock):
            rasters = outputs.store({files["probabilities"]: (percent, PERCENT_NODATA), files["binarized"]: (binarized, None),
                                     files["extent"]: (extent, None)}, tile_grid, lock, compress="LZW")
            segments = polygonize_lazy(binarized, grid.geotransform, grid.crs, outputs.reserve(files["segments"]),
                                       "prediction_segments", values, lock)
            extent_polygons = polygonize_lazy(extent, grid.geotransform, grid.crs,
                                              outputs.reserve(files["extent_polygons"]), "prediction_extent", None, lock)
            return [rasters, segments, extent_polygons,
                    dask.delayed(write_png_locked)(outputs.reserve(files["quicklook"]), quicklook, lock)]

        run_blocks(self, parameters, context, feedback, build, 5, 95)
        return files


def write_png_locked(path, rgb, lock):
    """write_png taking its turn with the other writes (GDAL error capture is process-wide)."""
    from ..core.export import write_png

    with lock:
        write_png(path, rgb)


BYTES_PER_PIXEL = 16  # in memory: probabilities (float32 and percent), binarized, extent, labels, quicklook
