"""darts:processtiles — many DARTS tiles in, one merged thaw-slump map out (core/regions/process_tiles.py)."""

import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..definitions import BINARIZATIONS, DEFAULT_TARGET_CRS, GROUPINGS
from .base import DartsAlgorithm
from .blocks import add_scheduler_parameter, scheduler_address
from .exclusion import EXCLUDE, add_exclusion, exclusion_file, exclusion_input
from .paths import geopackage_layer
from .polygon_options import add_statistics_scale
from .styles import style_on_load



def add_tile_folder(algorithm, optional=False):
    """processtiles' INPUT_FOLDER (its help: ProcessTilesAlgorithm.HELP), for every algorithm
    that reads a folder of tiles as processtiles does."""
    parameter = QgsProcessingParameterFile(ProcessTilesAlgorithm.INPUT_FOLDER, algorithm.tr("Folder of tile folders"),
                                           behavior=QgsProcessingParameterFile.Behavior.Folder, optional=optional)
    algorithm.add_parameter_with_help(parameter, False, ProcessTilesAlgorithm.HELP[ProcessTilesAlgorithm.INPUT_FOLDER])


class ProcessTilesAlgorithm(DartsAlgorithm):
    INPUT_FOLDER = "INPUT_FOLDER"
    THRESHOLD = "THRESHOLD"
    MASK_EROSION_SIZE = "MASK_EROSION_SIZE"
    EDGE_EROSION_SIZE = "EDGE_EROSION_SIZE"
    MIN_OBJECT_SIZE = "MIN_OBJECT_SIZE"
    QUALITY_LEVEL = "QUALITY_LEVEL"
    BOUNDARY = "BOUNDARY"
    SIZE_CONNECTIVITY = "SIZE_CONNECTIVITY"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    SUBSET = "SUBSET"
    BINARIZATION = "BINARIZATION"
    GROUP_BY = "GROUP_BY"
    TARGET_CRS = "TARGET_CRS"
    WORKERS = "WORKERS"
    STOP_ON_ERROR = "STOP_ON_ERROR"
    OUTPUT = "OUTPUT"
    OUTPUT_TILES = "OUTPUT_TILES"
    OUTPUT_COVERAGE = "OUTPUT_COVERAGE"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    TILES_PROCESSED = "TILES_PROCESSED"
    TILES_SKIPPED = "TILES_SKIPPED"
    FEATURES = "FEATURES"
    HELP = {
        INPUT_FOLDER: "Searched for tile folders (any depth, e.g. PlanetScope's tile/scene folders): a folder with "
                      "probabilities.tif is a tile; other folders (DARTS' _metadata_* folders, ...) are passed over. "
                      "A tile's id is its folder's name.",
        EXCLUDE: "Polygons in any CRS (e.g. a water or glacier mask), burnt onto each tile's grid (a pixel counts when "
                 "its centre lies inside). Objects with any pixel in them are removed whole in their tile (with "
                 "boundary = clip: those pixels are cut, the rest size-filtered). Rasters are not accepted here: "
                 "tiles lie on different grids.",
        TARGET_CRS: "The projected CRS of the merged map. Areas (area_m2) are measured in each tile's own CRS.",
        OUTPUT: "One GeoPackage layer: every slump once per group (no two features of a group overlap), with "
                "tile_id, date, year, its statistics, npixel, area_m2 and n_tiles; the run's parameters in the layer's "
                "metadata. Beside it the layer <name>_coverage: each tile's valid extent (tile_id, date, year).",
        SUBSET: "An ensemble member's name: its probabilities-<name>.tif (and binarized-<name>.tif) is read in each "
                "tile instead of probabilities.tif. Empty: the ensemble's probabilities.tif.",
        BINARIZATION: "recompute: the objects are binarized again from each tile's probabilities with this run's "
                      "threshold and sizes (inside the tile's extent); as_exported: each tile's binarized.tif is "
                      "taken as it is.",
        GROUP_BY: "Tiles of one group are merged into one map; groups are kept apart (a slump seen in 2019 and in "
                  "2024 is two features). The date comes from DARTS' tile id (darts_inference.json, the rasters' "
                  "DARTS_tileid tag or the folder's name).",
        OUTPUT_TILES: "A folder that receives <tile id>/binarized.tif, extent.tif and prediction_segments.gpkg.",
        OUTPUT_REPORT: "An HTML page: tiles processed and skipped (and why), objects per tile, the merge, the "
                       "parameters.",
    }

    def name(self):
        return "processtiles"

    def displayName(self):  # noqa: N802
        return self.tr("Process tiles into one map")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Many DARTS tiles in, one map of thaw-slump polygons out.</p>"
            "<p><b>Input folder</b> is searched for tile folders: a tile folder holds <i>probabilities.tif</i> "
            "(float 0..1 or DARTS' uint8 percent). With <i>quality_data_mask.tif</i> (0/1/2) the whole "
            "postprocessing of <i>Prepare export</i> runs, with the same parameters. A folder DARTS exported was "
            "postprocessed already: its valid extent is used as it is (no second erosion): <i>extent.tif</i>, else "
            "DARTS' <i>prediction_extent.gpkg</i> burnt onto the tile's grid, else the probabilities' valid pixels; "
            "the objects are binarized again from the probabilities with this run's threshold and minimum size "
            "(or, advanced, taken from <i>binarized.tif</i> as they are). A tile's id is its folder's name; its date "
            "comes from DARTS' tile id. Tiles may lie in different UTM zones.</p>"
            "<p>Tiles are merged <b>per year</b> by default (DARTS' products are yearly): detections of different "
            "years are never merged nor cut against each other. The map's features carry <i>date</i> and "
            "<i>year</i>; the layer <i>&lt;name&gt;_coverage</i> beside them holds each tile's valid extent, so "
            "'no slump here' and 'not observed here' can be told apart.</p>"
            "<p>Each tile is processed on its own (in parallel: <b>workers</b> processes, or the blocks of a "
            "dask.distributed cluster), then the objects are merged in the <b>target CRS</b> (default {crs}, "
            "NSIDC Polar Stereographic North, ArcticDEM's CRS). Where tiles overlap, objects are taken "
            "deepest inside their tile's valid extent first; an object that overlaps a taken one by at least half "
            "of the smaller is the same slump seen by another tile and is dropped (counted in <i>n_tiles</i>); a "
            "smaller overlap is cut off, so no two features overlap. An object removed in one tile because it "
            "touched that tile's edge or invalid data comes whole from a neighbour that sees it whole.</p>"
            "<p>Attributes: the statistics of <i>Polygonize</i>, <i>npixel</i>, <i>area_m2</i> (in the tile's own "
            "CRS), <i>tile_id</i>, <i>n_tiles</i> (tiles that detected it). The run's parameters are in the layer's "
            "metadata. A tile that cannot be read is skipped with a message naming it (advanced: stop on error). "
            "Optional: each tile's binarized/extent rasters and polygons (<b>tile outputs</b>) and an HTML "
            "<b>report</b>.</p>").format(crs=DEFAULT_TARGET_CRS)

    def initAlgorithm(self, config=None):  # noqa: N802
        add_tile_folder(self)
        self.add_postprocessing(self.THRESHOLD, self.MASK_EROSION_SIZE, self.EDGE_EROSION_SIZE, self.MIN_OBJECT_SIZE,
                                self.QUALITY_LEVEL)
        self.addParameter(QgsProcessingParameterCrs(self.TARGET_CRS, self.tr("Target CRS"), DEFAULT_TARGET_CRS))
        add_exclusion(self, "Exclusion polygons (e.g. water)", None, rasters=False)
        self.add_postprocessing(self.BOUNDARY, self.SIZE_CONNECTIVITY, "DEVICE")
        self.add_enum(self.GROUP_BY, "Merge tiles", GROUPINGS, "year")
        self.add_enum(self.BINARIZATION, "Objects", BINARIZATIONS, "recompute", advanced=True)
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.SUBSET, self.tr("Ensemble member (probabilities-<name>.tif)"),
                                                  optional=True), True, "")
        self.add_postprocessing(self.PROBABILITY_SCALE)
        add_statistics_scale(self)
        self.add_int(self.WORKERS, "Worker processes", os.cpu_count() or 1, advanced=True, minimum=1,
                     help_text="Tiles processed at the same time, each in its own process (1: in QGIS's process). "
                               "Each needs the memory of one tile's processing (about 2 GB for a 10980 x 10980 tile): "
                               "never more than the tiles, the usable cores or the tiles that fit in the available "
                               "memory (the log says when fewer).")
        add_scheduler_parameter(self, "e.g. tcp://127.0.0.1:8786: the tiles are processed on that dask.distributed "
                                      "cluster's workers, which must see the input and output folders.")
        stop = QgsProcessingParameterBoolean(self.STOP_ON_ERROR, self.tr("Stop at the first tile that fails"), False)
        self.add_parameter_with_help(
            stop, True, "Off: a tile that cannot be read or processed is skipped, named in the log and the "
                                 "report, and the run goes on.")
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, self.tr("Merged slump polygons"), QgsProcessing.SourceType.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_TILES, self.tr("Tile outputs (binarized, extent, polygons per tile)"), optional=True,
            createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT_REPORT, self.tr("Report"), self.tr("HTML files (*.html)"), optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputVectorLayer(self.OUTPUT_COVERAGE, self.tr("Tile coverage"),
                                                      QgsProcessing.SourceType.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.TILES_PROCESSED, self.tr("Tiles processed")))
        self.addOutput(QgsProcessingOutputNumber(self.TILES_SKIPPED, self.tr("Tiles skipped")))
        self.addOutput(QgsProcessingOutputNumber(self.FEATURES, self.tr("Features in the merged map")))

    def input_paths(self, parameters, context):
        """The tiles' rasters: no output may replace one."""
        from ..core.regions.tiles import find_tiles

        folder = self.parameterAsFile(parameters, self.INPUT_FOLDER, context)
        if not folder or not os.path.isdir(folder):
            return []
        subset = self.parameterAsString(parameters, self.SUBSET, context).strip() or None
        sources, _ = find_tiles(folder, subset)
        return [exclusion_file(self, parameters, context), *[path for source in sources for path in source.inputs]]

    def load_coverage(self, context, output) -> str:
        """The tiles' coverage layer beside the map (its URI), loaded with the map when the map
        is, styled grey under the slumps."""
        from ..core.regions.merge import coverage_layer
        from .paths import geopackage_layer

        target, layer = geopackage_layer(output)
        layer = layer or os.path.splitext(os.path.basename(target))[0]
        uri = f"{target}|layername={coverage_layer(layer)}"
        if context.willLoadLayerOnCompletion(output):
            context.addLayerToLoadOnCompletion(uri, QgsProcessingContext.LayerDetails(
                self.tr("Tile coverage"), context.project(), self.OUTPUT_COVERAGE))
            style_on_load(context, uri, "coverage")
        return uri

    def target_crs(self, parameters, context) -> str:
        """TARGET_CRS as QGIS reads it (AUTHORITY:CODE, else its WKT); a geographic CRS is refused."""
        crs = self.parameterAsCrs(parameters, self.TARGET_CRS, context)
        if not crs.isValid():
            raise ValueError(f"{self.TARGET_CRS}: not a valid CRS")
        if crs.isGeographic():
            raise ValueError(f"{self.TARGET_CRS}: {crs.authid() or crs.description()} is geographic; choose a projected "
                             f"CRS (the default {QgsCoordinateReferenceSystem('EPSG:3413').description()} covers the "
                             f"Arctic)")
        return crs.authid() or crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED)

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.regions.process_tiles.process_tiles_files); the map
        and its coverage styled and loaded."""
        from ..core.regions.process_tiles import TilesOutputs, process_tiles_files
        from ..core.regions.report import TILES_TITLE
        from ..core.regions.tiles import TileSettings

        folder = self.parameterAsFile(parameters, self.INPUT_FOLDER, context)
        if not folder or not os.path.isdir(folder):
            raise ValueError(f"{self.INPUT_FOLDER}: {folder!r} is not a folder")
        target = self.target_crs(parameters, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        files = TilesOutputs(*geopackage_layer(output), self.parameterAsFileOutput(parameters, self.OUTPUT_TILES,
                                                                                    context) or None,
                             self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None)
        settings = self.postprocess_settings(
            parameters, context, feedback, TileSettings,
            subset=self.parameterAsString(parameters, self.SUBSET, context).strip() or None,
            binarization=self.parameterAsEnumString(parameters, self.BINARIZATION, context) or "recompute",
            group_by=self.parameterAsEnumString(parameters, self.GROUP_BY, context) or "year",
            exclude=exclusion_input(self, parameters, context, lambda: outputs.scratch(  # a layer that is no file
                os.path.join(os.path.dirname(os.path.abspath(files.map)), "exclusion.gpkg"))))

        summary = process_tiles_files(
            folder, files, target, settings, workers=self.parameterAsInt(parameters, self.WORKERS, context),
            address=scheduler_address(self, parameters, context), files=outputs, log=self.log_to(feedback),
            title=self.tr(TILES_TITLE),
            stop_on_error=self.parameterAsBool(parameters, self.STOP_ON_ERROR, context),
            progress=self.progress_reporter(feedback))
        style_on_load(context, output, "segments")
        results = {self.OUTPUT: output, self.OUTPUT_COVERAGE: self.load_coverage(context, output),
                   self.TILES_PROCESSED: len(summary.tiles), self.TILES_SKIPPED: len(summary.skipped),
                   self.FEATURES: summary.features}
        results.update({name: path for name, path in ((self.OUTPUT_TILES, files.tiles),
                                                      (self.OUTPUT_REPORT, files.report)) if path})
        feedback.setProgress(100)
        return results
