"""darts:erodemask — the quality mask's valid area, eroded and cut off at the tile edges."""

from qgis.core import QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from ..definitions import QUALITY_LEVELS
from .base import DartsAlgorithm
from .blocks import add_block_parameters, memory_limit, scheduler_address
from .styles import style_on_load


class ErodeMaskAlgorithm(DartsAlgorithm):
    MASK = "MASK"
    QUALITY_LEVEL = "QUALITY_LEVEL"
    SIZE = "SIZE"
    EDGE_SIZE = "EDGE_SIZE"
    OUTPUT = "OUTPUT"
    HELP = {
        MASK: "A quality mask (0 invalid, 1 low, 2 high quality; nodata counts as 0) or any 0/1 mask.",
        QUALITY_LEVEL: "Which pixels are valid before the erosion (DARTS' pipeline: low and high quality).",
        SIZE: "Radius (pixels) of the disk by which the valid area shrinks (DARTS' default 10).",
        EDGE_SIZE: "Width (pixels) of the band along the raster edges that is set invalid. Not set: the erosion "
                   "size; 0: no band.",
        OUTPUT: "uint8 GeoTIFF: 1 = valid, 0 = invalid. Give it to 'Binarize probabilities' as its mask.",
    }

    def name(self):
        return "erodemask"

    def displayName(self):  # noqa: N802
        return self.tr("Erode quality mask")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>The extent in which predictions are trusted, as DARTS computes it.</p>"
            "<p><b>Mask</b>: a quality mask (0 invalid, 1 low, 2 high quality; nodata counts as 0), or any 0/1 mask. "
            "Pixels of at least the <b>quality level</b> are valid (none: all pixels). A valid pixel stays valid "
            "only if no invalid pixel lies within a disk of radius <b>size</b> pixels around it; pixels beyond the "
            "raster count as valid. Then a band of <b>edge size</b> pixels (empty = size; 0 = none) along the raster "
            "edges is set invalid.</p><p>Output: uint8, 1 = valid, 0 = invalid. Feed it to 'Binarize' as its mask.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.MASK, self.tr("Quality mask")))
        self.add_enum(self.QUALITY_LEVEL, "Quality level", QUALITY_LEVELS, "low_quality")
        self.add_int(self.SIZE, "Erosion size (disk radius, pixels)", 10)
        self.add_int(self.EDGE_SIZE, "Edge size (pixels; Not set = erosion size)", None, optional=True)
        self.add_device()
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Eroded mask")))

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.products.steps_files.erode_mask_files); the layer styled on load."""
        from ..core.products.steps_files import ErodeMaskSettings, erode_mask_files

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        settings = ErodeMaskSettings(
            quality_level=self.parameterAsEnumString(parameters, self.QUALITY_LEVEL, context),
            size=self.parameterAsInt(parameters, self.SIZE, context),
            edge_size=self.optional_int(parameters, self.EDGE_SIZE, context),
            device=self.device_of(parameters, context, feedback),
            memory_limit_mb=memory_limit(self, parameters, context),
            dask_scheduler=scheduler_address(self, parameters, context))
        erode_mask_files(self.raster_path(parameters, self.MASK, context), output, settings,
                         self.progress_reporter(feedback), files=outputs, tags=outputs.tags,
                         description=outputs.descriptions.get(output), log=self.log_to(feedback),
                         names={"mask": self.MASK})
        style_on_load(context, output, "extent")
        return {self.OUTPUT: output}
