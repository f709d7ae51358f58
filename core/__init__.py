"""Pure engine of the DARTS postprocessing plugin: numpy/scipy on the CPU, cupy on the GPU.

No QGIS import here: the core is usable from any Python with numpy and scipy (xarray for
Datasets; GDAL's `osgeo` for writing GeoTIFF/GeoPackage files). See ../README.md and the
contract in semantics.md.
"""

from ._backend import gpu_available, resolve_device
from .api import (
    BOUNDARY_MODES,
    CONNECTIVITIES,
    QUALITY_LEVELS,
    binarize,
    check_quality_level,
    check_size,
    check_threshold,
    erode_mask,
    prepare_export,
    prepare_export_thresholds,
)
from .export import export_tile, to_percent
from .objects import label_objects, object_statistics
from .quality import QUALITY_SOURCES, quality_from_observations, quality_from_scl, quality_from_udm2, quality_mask
from .tiles import TileSettings, merge_tiles, process_tiles
from .vectorize import object_areas, polygonize

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
