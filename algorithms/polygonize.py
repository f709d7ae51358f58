"""darts:polygonize — binarized objects as polygons with probability statistics."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import DartsAlgorithm
from .blocks import add_block_parameters, block_plan, polygonize_in_blocks
from .polygon_options import add_polygon_layout, add_statistics_scale, layout_of, statistics_probabilities


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
        from ..core.files.grids import check_same_grid, grid_of
        from .raster_io import read_binary

        binarized_path = self.raster_path(parameters, self.BINARIZED, context)
        probabilities_path = self.raster_path(parameters, self.PROBABILITIES, context, required=False)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        grid = grid_of(binarized_path, self.BINARIZED)
        if probabilities_path:
            check_same_grid(self.BINARIZED, grid, self.PROBABILITIES, grid_of(probabilities_path, self.PROBABILITIES))
        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        if probabilities_path:
            self.warn_percent(probabilities_path, self.PROBABILITIES, scale, feedback)
        layout = layout_of(self, parameters, context)
        self.area_note(grid, feedback)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, BYTES_PER_PIXEL)
        if block:
            from ..core.lazy.blockwise import read_binary_lazy

            binary = read_binary_lazy(binarized_path, self.BINARIZED, block)
            probabilities = (statistics_probabilities(probabilities_path, self.PROBABILITIES, scale, block)
                             if probabilities_path else None)
            count = polygonize_in_blocks(self, parameters, context, feedback, outputs, output, binary, grid,
                                         probabilities, layout=layout)
        else:
            binary = read_binary(binarized_path, self.BINARIZED)
            probabilities = (statistics_probabilities(probabilities_path, self.PROBABILITIES, scale)
                             if probabilities_path else None)
            self.check_canceled(feedback)
            count = self.write_polygons(output, context, outputs, binary, grid, probabilities,
                                        self.progress_reporter(feedback, 5, 95), layout=layout)
        feedback.pushInfo(self.tr("{} objects polygonized.").format(count))
        return {self.OUTPUT: output}


BYTES_PER_PIXEL = 12  # in memory: the binary raster, float32 probabilities, labels, traced pixels
