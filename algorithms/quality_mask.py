"""darts:qualitymask — a DARTS quality mask (0/1/2) from SCL, UDM2 or observation counts."""

from qgis.core import QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from ..definitions import QUALITY_SOURCES
from .base import DartsAlgorithm
from .styles import style_on_load


class QualityMaskAlgorithm(DartsAlgorithm):
    INPUT = "INPUT"
    SOURCE = "SOURCE"
    OUTPUT = "OUTPUT"
    HELP = {
        INPUT: "A Sentinel-2 L2A SCL band, a Planet UDM2 raster (8 bands) or a count of observations per pixel.",
        SOURCE: "What the input raster is; it decides how its values map to quality 0, 1, 2.",
        OUTPUT: "uint8 GeoTIFF on the input's grid: 0 invalid, 1 low quality, 2 high quality.",
    }

    def name(self):
        return "qualitymask"

    def displayName(self):  # noqa: N802
        return self.tr("Make quality mask")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Builds the quality mask that prepareexport's quality levels need (0 invalid, 1 low quality, "
            "2 high quality), with DARTS' own mappings:</p><ul>"
            "<li><b>scl</b>: a Sentinel-2 L2A scene classification band. Classes 0 (no data) and 1 (saturated) "
            "&rarr; 0; 2 (dark area), 4 (vegetation), 5 (bare soil), 6 (water), 7 (unclassified), 10 (thin cirrus) "
            "&rarr; 2; 3 (cloud shadow), 8, 9 (clouds), 11 (snow) &rarr; 1. Other values are an error.</li>"
            "<li><b>udm2</b>: a Planet UDM2 raster (8 bands). Band 8 (unusable data) non-zero &rarr; 0; else any of "
            "bands 2-6 (snow, shadow, light haze, heavy haze, cloud) set &rarr; 1; else 2. Bands 1-6 must be 0/1 "
            "flags and band 7 a confidence 0..100.</li>"
            "<li><b>observations</b>: the number of observations behind a mosaic pixel. 0 (or nodata) &rarr; 0, "
            "1-3 &rarr; 1, more than 3 &rarr; 2.</li></ul>"
            "<p>The mask is written on the input's grid: resample it onto the probabilities' grid if they differ "
            "(Sentinel-2's SCL has 20 m pixels).</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("SCL, UDM2 or observation count raster")))
        self.add_enum(self.SOURCE, "Input kind", QUALITY_SOURCES, "scl")
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Quality mask")))

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.products.steps_files.quality_mask_files); the layer styled on load."""
        from ..core.products.steps_files import QualityMaskSettings, quality_mask_files

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        settings = QualityMaskSettings(source=self.parameterAsEnumString(parameters, self.SOURCE, context))
        quality_mask_files(self.raster_path(parameters, self.INPUT, context), output, settings,
                           self.progress_reporter(feedback), files=outputs, tags=outputs.tags,
                           description=outputs.descriptions.get(output), log=self.log_to(feedback),
                           names={"input": self.INPUT})
        style_on_load(context, output, "quality")
        return {self.OUTPUT: output}
