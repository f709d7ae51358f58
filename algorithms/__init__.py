"""The provider's Processing algorithms (QGIS wrappers around `core`)."""

from .binarize import BinarizeAlgorithm
from .erode_mask import ErodeMaskAlgorithm
from .prepare_export import PrepareExportAlgorithm

ALGORITHMS = [PrepareExportAlgorithm, ErodeMaskAlgorithm, BinarizeAlgorithm]
