"""Pure engine of the DARTS postprocessing plugin: numpy/scipy on the CPU, cupy on the GPU.

No QGIS import here: the core is usable from any Python with numpy and scipy (xarray for
Datasets; GDAL's `osgeo` for writing GeoTIFF/GeoPackage files). See ../README.md and the
contract in semantics.md.
"""

from ..definitions import BOUNDARY_MODES
from .kernels.checks import CONNECTIVITIES, QUALITY_LEVELS, check_quality_level, check_size, check_threshold
from .kernels.devices import gpu_available, resolve_device
from .kernels.encodings import to_percent
from .kernels.quality import QUALITY_SOURCES, quality_from_observations, quality_from_scl, quality_from_udm2, quality_mask
from .products.api import binarize, erode_mask, label_objects, object_statistics, prepare_export, prepare_export_thresholds
from .products.export import export_tile
from .products.polygons import object_areas, polygonize
from .regions.process_tiles import merge_tiles, process_tiles
from .regions.tiles import TileSettings

__all__ = [
    "BOUNDARY_MODES",
    "CONNECTIVITIES",
    "QUALITY_LEVELS",
    "QUALITY_SOURCES",
    "TileSettings",
    "binarize",
    "check_quality_level",
    "check_size",
    "check_threshold",
    "erode_mask",
    "export_tile",
    "gpu_available",
    "label_objects",
    "merge_tiles",
    "object_areas",
    "object_statistics",
    "polygonize",
    "prepare_export",
    "prepare_export_thresholds",
    "process_tiles",
    "quality_from_observations",
    "quality_from_scl",
    "quality_from_udm2",
    "quality_mask",
    "resolve_device",
    "to_percent",
]
