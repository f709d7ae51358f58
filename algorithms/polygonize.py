"""darts:polygonize — binarized objects as polygons with probability statistics."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import DartsAlgorithm
from .blocks import add_block_parameters, memory_limit, scheduler_address
from .polygon_options import add_polygon_layout, add_statistics_scale, layout_of


class PolygonizeAlgorithm(DartsAlgorithm):
    BINARIZED = "BINARIZED"
    PROBABILITIES = "PROBABILITIES"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    OUTPUT = "OUTPUT"
    HELP = {
        BINARIZED: "A 0/1 raster: every 8-connected group of 1 pixels becomes one polygon feature (an extent "
                   "raster works too).",
        PROBABILITIES: "When given, each feature gets the min, max, mean, median and std of the probabilities "
                       "inside it (same grid as the objects).",
        OUTPUT: "GeoPackage with Region_ID, npixel, area_m2 and the probability statistics.",
    }

    def name(self):
        return "polygonize"

    def displayName(self):  # noqa: N802
        return self.tr("Polygonize objects")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Turns every 8-connected object of a binarized raster (0/1) into one polygon feature that follows "
            "the pixel edges: holes kept, nothing simplified, in the raster's CRS, written as a GeoPackage. "
            "Diagonally touching parts of one object stay one (multi)polygon feature (advanced: <b>polygon "
            "features</b> = parts writes one Polygon per 4-connected part, as upstream DARTS does).</p>"
            "<p>Attributes: <b>Region_ID</b> (1..n, in row order of each object's first pixel), <b>npixel</b>, "
            "<b>area_m2</b> and, when <b>probabilities</b> are given, their <b>min</b>, <b>max</b>, <b>mean</b>, "
            "<b>median</b> and <b>std</b> inside the object (nodata left out): 0..1, or with <b>statistics "
            "scale</b> = percent as DARTS' export computes them, of the uint8 percent values (min and max "
            "integers).</p>"
            "<p>An extent raster can be polygonized the same way.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.BINARIZED, self.tr("Binarized objects (0/1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities"),
                                                            optional=True))
        self.add_scale()
        add_statistics_scale(self)
        add_polygon_layout(self)
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, self.tr("Polygons"), QgsProcessing.SourceType.TypeVectorPolygon))

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.products.polygonize_files); the layer styled on load."""
        from ..core.products.polygonize_files import PolygonizeSettings, polygonize_files
        from .paths import geopackage_layer
        from .styles import style_on_load

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        target, layer = geopackage_layer(output)
        layout = layout_of(self, parameters, context)
        settings = PolygonizeSettings(
            scale=self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto",
            statistics=layout.statistics, parts=layout.parts, memory_limit_mb=memory_limit(self, parameters, context),
            dask_scheduler=scheduler_address(self, parameters, context))

        polygonize_files(self.raster_path(parameters, self.BINARIZED, context), target,
                         self.raster_path(parameters, self.PROBABILITIES, context, required=False), settings,
                         self.progress_reporter(feedback), layer=layer, files=outputs, tags=outputs.tags,
                         log=self.log_to(feedback), names={"binarized": self.BINARIZED, "probabilities": self.PROBABILITIES})
        style_on_load(context, output, "segments")
        return {self.OUTPUT: output}
