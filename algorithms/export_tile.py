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
from .polygon_options import add_polygon_layout, layout_of
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
               "quicklook": ("OUTPUT_QUICKLOOK", QgsProcessingOutputFile, "quicklook.png"),
               "segments_parquet": ("OUTPUT_SEGMENTS_PARQUET", QgsProcessingOutputFile, "prediction_segments.parquet"),
               "extent_parquet": ("OUTPUT_EXTENT_PARQUET", QgsProcessingOutputFile, "prediction_extent.parquet")}

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
            "<li><b>prediction_segments.gpkg</b>: one MultiPolygon per object (advanced: <b>polygon features</b> = "
            "parts writes one Polygon per 4-connected part, as upstream) with Region_ID, min, max, mean, median, "
            "std, npixel (Integer64, statistics as DARTS computes them: of the uint8 percent values, min and max "
            "integers 0..100) and area_m2; geometry column geom.</li>"
            "<li><b>prediction_extent.gpkg</b>: the extent as polygons, with the same fields.</li>"
            "<li><b>prediction_segments.parquet</b>, <b>prediction_extent.parquet</b>: GeoParquet copies, which "
            "DARTS' completeness check expects; written when GDAL has the Parquet driver or Python has pyarrow, "
            "else skipped (the log says so).</li>"
            "<li><b>quicklook.png</b>: a small overview (probabilities grey, outside the extent blue, objects "
            "red).</li></ul>"
            "<p>Every file carries DARTS_* tags (GDAL metadata): the export date, the tile id (from the inputs' "
            "tags, else the folder's name), the postprocessing settings found in the inputs, and the parameters of "
            "this run; the rasters upstream's band descriptions.</p>"
            "<p>Files of the same name in the folder are replaced; all files appear together or none does.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BINARIZED, self.tr("Binarized segmentation (0/1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.EXTENT, self.tr("Extent (0/1)")))
        self.add_scale()
        add_polygon_layout(self)
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Tile folder")))
        for name, kind, filename in self.OUTPUTS.values():
            self.addOutput(kind(name, self.tr(filename)))

    def execute(self, parameters, context, feedback, outputs):
        from ..core import export_tile
        from ..core.export import tile_layout
        from ..core.metadata import PREFIX
        from .raster_io import check_same_grid, grid_of, read_binary, read_probabilities_for_export

        paths = {name: self.raster_path(parameters, name, context)
                 for name in (self.PROBABILITIES, self.BINARIZED, self.EXTENT)}
        grid = grid_of(paths[self.BINARIZED], self.BINARIZED)
        for name in (self.PROBABILITIES, self.EXTENT):
            check_same_grid(self.BINARIZED, grid, name, grid_of(paths[name], name))
        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        self.warn_percent(paths[self.PROBABILITIES], self.PROBABILITIES, scale, feedback)
        self.area_note(grid, feedback)
        folder = self.parameterAsFileOutput(parameters, self.OUTPUT_FOLDER, context)
        # DARTS names a tile's folder after the tile: its id when the inputs' tags have none.
        outputs.tags.setdefault(PREFIX + "tileid", os.path.basename(os.path.abspath(folder)))
        layout = tile_layout(layout_of(self, parameters, context).parts, outputs.tags)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, BYTES_PER_PIXEL)
        if block:
            written = self.export_in_blocks(parameters, context, feedback, outputs, paths, grid, scale, folder, block,
                                            layout)
        else:
            tile = {"probabilities": read_probabilities_for_export(paths[self.PROBABILITIES], self.PROBABILITIES, scale),
                    "binarized_segmentation": read_binary(paths[self.BINARIZED], self.BINARIZED),
                    "extent": read_binary(paths[self.EXTENT], self.EXTENT)}
            self.check_canceled(feedback)
            written = export_tile(tile, folder, grid.geotransform, grid.crs, inputs=list(paths.values()),
                                  progress=self.progress_reporter(feedback, 10, 90), tags=outputs.tags,
                                  parts=layout.parts)
        self.report_parquet(folder, written, feedback)
        results = {self.OUTPUT_FOLDER: folder}
        results.update({name: written[kind] for kind, (name, _, _) in self.OUTPUTS.items() if kind in written})
        for kind, label in (("extent_polygons", "Prediction extent"), ("segments", "Prediction segments")):
            context.addLayerToLoadOnCompletion(written[kind], QgsProcessingContext.LayerDetails(
                self.tr(label), context.project(), self.OUTPUTS[kind][0]))
            style_on_load(context, written[kind], kind)
        feedback.pushInfo(self.tr("Tile written to {}").format(os.path.abspath(folder)))
        return results

    def report_parquet(self, folder, written, feedback):
        """Say in the log whether the GeoParquet twins were written, and why not."""
        from ..core.export import PARQUET_FILES
        from ..core.geoparquet import geoparquet_support

        names = ", ".join(name for _, name in PARQUET_FILES.values())
        if all(kind in written for kind in PARQUET_FILES):
            feedback.pushInfo(self.tr("GeoParquet written: {} (with {}).").format(names, geoparquet_support()[0]))
        else:
            feedback.pushWarning(self.tr("Skipped {} (DARTS' completeness check expects them): {}. Install pyarrow "
                                         "into QGIS's Python, or use a GDAL with the Parquet driver, to get them.")
                                 .format(names, geoparquet_support()[1]))

    def export_in_blocks(self, parameters, context, feedback, outputs, paths, grid, scale, folder, block, layout):
        """The tile files of rasters larger than MEMORY_LIMIT, written block by block, with the
        same contents as core.export_tile writes in memory."""
        import dask
        import dask.array as da
        import numpy as np

        from ..core import to_percent
        from ..core.chunked_polygons import polygonize_lazy
        from ..core.blockwise import read_binary_lazy, read_probabilities_for_export_lazy
        from ..core.export import (LAYERS, PERCENT_NODATA, TILE_FILES, parquet_files, quicklook_of_samples,
                                   quicklook_step, write_parquet_twins)
        from ..core.metadata import LONG_NAMES

        files = {kind: os.path.join(folder, name) for kind, name in TILE_FILES.items()}
        outputs.descriptions = {**outputs.descriptions, **{files[kind]: LONG_NAMES[kind]
                                                           for kind in ("probabilities", "binarized", "extent")}}
        # As export_tile in memory: the tile files always carry a geotransform (GDAL's default too).
        tile_grid = dataclasses.replace(grid, has_geotransform=True)
        probabilities = read_probabilities_for_export_lazy(paths[self.PROBABILITIES], self.PROBABILITIES, block, scale)
        binarized = read_binary_lazy(paths[self.BINARIZED], self.BINARIZED, block).astype(np.uint8)
        extent = read_binary_lazy(paths[self.EXTENT], self.EXTENT, block).astype(np.uint8)
        percent = probabilities.map_blocks(to_percent, dtype=np.uint8, meta=np.zeros((0, 0), np.uint8))
        percent = da.where(extent == 0, PERCENT_NODATA, percent).astype(np.uint8)

        step = quicklook_step(percent.shape)
        height, width = percent.shape
        padded = da.pad(binarized != 0, ((0, -height % step), (0, -width % step)), constant_values=False)
        cells = da.coarsen(np.any, padded.rechunk(step * max(1, block // step)), {0: step, 1: step})
        quicklook = dask.delayed(quicklook_of_samples)(percent[::step, ::step], extent[::step, ::step], cells)
        geopackages = {kind: outputs.reserve(files[kind]) for kind in LAYERS}

        def build(lock):
            rasters = outputs.store({files["probabilities"]: (percent, PERCENT_NODATA), files["binarized"]: (binarized, None),
                                     files["extent"]: (extent, None)}, tile_grid, lock, compress="LZW")
            polygons = [polygonize_lazy(source, grid.geotransform, grid.crs, geopackages[kind], LAYERS[kind], percent,
                                        lock, layout) for kind, source in (("segments", binarized), ("extent_polygons", extent))]
            return [rasters, *polygons,
                    dask.delayed(write_png_locked)(outputs.reserve(files["quicklook"]), quicklook, outputs.tags, lock)]

        run_blocks(self, parameters, context, feedback, build, 5, 90)
        twins, _ = parquet_files(folder)
        write_parquet_twins(twins, geopackages, outputs.reserve)
        files.update({kind: path for kind, (_, path) in twins.items()})
        return files


def write_png_locked(path, rgb, tags, lock):
    """write_png taking its turn with the other writes (GDAL error capture is process-wide)."""
    from ..core.export import write_png

    with lock:
        write_png(path, rgb, tags)


BYTES_PER_PIXEL = 16  # in memory: probabilities (float32 and percent), binarized, extent, labels, quicklook
