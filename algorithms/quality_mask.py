"""darts:qualitymask — a DARTS quality mask (0/1/2) from SCL, UDM2 or observation counts."""

from qgis.core import QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from ..definitions import Choices
from .base import DartsAlgorithm
from .styles import style_on_load

SOURCES = Choices(("scl", "Sentinel-2 scene classification (SCL)"), ("udm2", "Planet UDM2"),
                  ("observations", "Observation counts"))


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
        self.add_enum(self.SOURCE, "Input kind", SOURCES, "scl")
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Quality mask")))

    def execute(self, parameters, context, feedback, outputs):
        from ..core import quality_mask
        from ..core.kernels.quality import UDM2_UNUSABLE_BAND
        from ..core.files.geotiff import read_band
        from ..core.files.grids import grid_of
        from .raster_io import read_bands

        path = self.raster_path(parameters, self.INPUT, context)
        source = self.parameterAsEnumString(parameters, self.SOURCE, context)
        grid = grid_of(path, self.INPUT)
        if source == "udm2":
            data = read_bands(path, self.INPUT, UDM2_UNUSABLE_BAND)
        else:
            data, nodata = read_band(path, self.INPUT)
            if nodata is not None:
                data = data.copy()
                data[data == nodata] = 0  # nodata: SCL class 0 (no data), or no observation
        feedback.setProgress(40)
        self.check_canceled(feedback)
        try:
            quality = quality_mask(source, data)
        except (ValueError, TypeError) as error:  # data the source cannot hold: name the input
            raise ValueError(f"{self.INPUT} ({path}): {error}") from None
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        outputs.write(output, quality, grid)
        style_on_load(context, output, "quality")
        counts = [int((quality == value).sum()) for value in range(3)]
        feedback.pushInfo(self.tr("Invalid: {} pixels, low quality: {}, high quality: {}.").format(*counts))
        feedback.setProgress(100)
        return {self.OUTPUT: output}
