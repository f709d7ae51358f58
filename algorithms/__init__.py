"""The provider's Processing algorithms (QGIS wrappers around `core`)."""

from .binarize import BinarizeAlgorithm
from .collect_outputs import CollectOutputsAlgorithm
from .compare_years import CompareYearsAlgorithm
from .erode_mask import ErodeMaskAlgorithm
from .evaluate import EvaluateAlgorithm
from .export_tile import ExportTileAlgorithm
from .polygonize import PolygonizeAlgorithm
from .prepare_export import PrepareExportAlgorithm
from .process_tiles import ProcessTilesAlgorithm
from .quality_mask import QualityMaskAlgorithm

ALGORITHMS = [PrepareExportAlgorithm, ErodeMaskAlgorithm, BinarizeAlgorithm, PolygonizeAlgorithm, ExportTileAlgorithm,
              QualityMaskAlgorithm, ProcessTilesAlgorithm, CollectOutputsAlgorithm,
              EvaluateAlgorithm, CompareYearsAlgorithm]
