"""darts:binarize — threshold, drop objects touching invalid pixels, drop small objects."""

from qgis.core import QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from .base import DartsAlgorithm
from .blocks import add_block_parameters, memory_limit, scheduler_address
from .styles import style_on_load


class BinarizeAlgorithm(DartsAlgorithm):
    PROBABILITIES = "PROBABILITIES"
    MASK = "MASK"
    THRESHOLD = "THRESHOLD"
    MIN_OBJECT_SIZE = "MIN_OBJECT_SIZE"
    SIZE_CONNECTIVITY = "SIZE_CONNECTIVITY"
    PROBABILITY_SCALE = "PROBABILITY_SCALE"
    OUTPUT = "OUTPUT"
    HELP = {
        PROBABILITIES: "Segmentation probabilities: float 0..1 (NaN or nodata = no prediction) or DARTS' uint8 "
                       "percent (0..100, nodata 255).",
        MASK: "Objects with any pixel where this raster is 0 are removed whole (e.g. the output of 'Erode quality "
              "mask'). Not set: no object is removed for that.",
        MIN_OBJECT_SIZE: "Objects with fewer pixels are removed; an object of exactly this size stays (DARTS' "
                         "default 32).",
        OUTPUT: "uint8 GeoTIFF: 1 = object, 0 = background.",
    }

    def name(self):
        return "binarize"

    def displayName(self):  # noqa: N802
        return self.tr("Binarize probabilities")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Binary thaw-slump objects from segmentation probabilities, as DARTS' binarize step.</p>"
            "<p>Pixels with probability &gt; <b>threshold</b> (NaN/nodata never; DARTS' uint8 percent v where v &ge; 100 &times; "
            "threshold, so 50 passes 0.5) form 8-connected objects. An object "
            "with any pixel where the <b>mask</b> is 0 (e.g. the output of 'Erode quality mask') is removed whole; "
            "without a mask no object is removed for that. Objects with fewer than <b>minimum object size</b> pixels "
            "are removed (sizes counted with the chosen connectivity; 4 reproduces upstream DARTS).</p>"
            "<p><b>Probabilities</b>: float 0..1 or DARTS' uint8 percent (0..100, nodata 255). "
            "Output: uint8, 1 = object, 0 = background.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.PROBABILITIES, self.tr("Probabilities")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.MASK, self.tr("Valid mask (0 = invalid)"), optional=True))
        self.add_threshold(self.THRESHOLD)
        self.add_int(self.MIN_OBJECT_SIZE, "Minimum object size (pixels)", 32)
        self.add_size_connectivity()
        self.add_device()
        self.add_scale()
        add_block_parameters(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Binarized segmentation")))

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.products.steps_files.binarize_files); the layer styled on load."""
        from ..core.products.steps_files import BinarizeSettings, binarize_files

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        settings = BinarizeSettings(
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
            min_object_size=self.parameterAsInt(parameters, self.MIN_OBJECT_SIZE, context),
            size_connectivity=int(self.parameterAsEnumString(parameters, self.SIZE_CONNECTIVITY, context)),
            device=self.device_of(parameters, context, feedback),
            scale=self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto",
            memory_limit_mb=memory_limit(self, parameters, context),
            dask_scheduler=scheduler_address(self, parameters, context))
        binarize_files(self.raster_path(parameters, self.PROBABILITIES, context), output,
                       self.raster_path(parameters, self.MASK, context, required=False), settings,
                       self.progress_reporter(feedback), files=outputs, tags=outputs.tags,
                       description=outputs.descriptions.get(output), log=self.log_to(feedback),
                       names={"probabilities": self.PROBABILITIES, "mask": self.MASK})
        style_on_load(context, output, "binarized")
        return {self.OUTPUT: output}
