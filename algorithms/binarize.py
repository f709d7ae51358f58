"""darts:binarize — threshold, drop objects touching invalid pixels, drop small objects."""

from qgis.core import QgsProcessingParameterRasterDestination, QgsProcessingParameterRasterLayer

from .base import DartsAlgorithm
from .blocks import add_block_parameters, block_plan, run_blocks
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
        import numpy as np

        from ..core import binarize
        from ..core.files.geotiff import probability_scale_of
        from ..core.files.geotiff import read_probabilities, read_quality
        from ..core.files.grids import check_same_grid, grid_of

        scale = self.parameterAsEnumString(parameters, self.PROBABILITY_SCALE, context) or "auto"
        path = self.raster_path(parameters, self.PROBABILITIES, context)
        grid = grid_of(path, self.PROBABILITIES)
        probability_scale = probability_scale_of(path, self.PROBABILITIES, scale)
        self.warn_percent(path, self.PROBABILITIES, scale, feedback)
        mask_path = self.raster_path(parameters, self.MASK, context, required=False)
        if mask_path:
            check_same_grid(self.PROBABILITIES, grid, self.MASK, grid_of(mask_path, self.MASK))
        threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        min_size = self.parameterAsInt(parameters, self.MIN_OBJECT_SIZE, context)
        connectivity = int(self.parameterAsEnumString(parameters, self.SIZE_CONNECTIVITY, context))
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        block = block_plan(self, parameters, context, feedback, grid.width, grid.height, BYTES_PER_PIXEL)
        if block:
            import dask.array as da

            from ..core.lazy.blockwise import read_probabilities_lazy, read_quality_lazy

            probabilities = read_probabilities_lazy(path, self.PROBABILITIES, block, scale)
            mask = (read_quality_lazy(mask_path, self.MASK, block) if mask_path
                    else da.ones(probabilities.shape, dtype=np.uint8, chunks=probabilities.chunks))
            objects = binarize(probabilities, threshold, min_size, mask, size_connectivity=connectivity,
                               probability_scale=probability_scale)
            from ..core.lazy.blockwise import any_prediction, require_prediction

            _, has_prediction = run_blocks(self, parameters, context, feedback,
                                           lambda lock: [outputs.store({output: (objects.astype(np.uint8), None)}, grid,
                                                                       lock), any_prediction(probabilities)])
            require_prediction(has_prediction, self.PROBABILITIES)
        else:
            probabilities = read_probabilities(path, self.PROBABILITIES, scale)
            mask = read_quality(mask_path, self.MASK) if mask_path else np.ones(probabilities.shape, np.uint8)
            feedback.setProgress(20)
            self.check_canceled(feedback)
            objects = binarize(probabilities, threshold, min_size, mask, self.device_of(parameters, context, feedback),
                               size_connectivity=connectivity, probability_scale=probability_scale)
            feedback.setProgress(80)
            self.check_canceled(feedback)
            outputs.write(output, objects.astype(np.uint8), grid)
        style_on_load(context, output, "binarized")
        return {self.OUTPUT: output}


BYTES_PER_PIXEL = 8  # in memory: float32 probabilities, the mask, the objects and the output
