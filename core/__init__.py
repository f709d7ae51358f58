"""Pure engine of the DARTS postprocessing plugin: numpy/scipy on the CPU, cupy on the GPU.

No QGIS import here: the core is usable from any Python with numpy and scipy (xarray for
Datasets). See ../README.md and the contract in semantics.md.
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
)

__all__ = [
    "BOUNDARY_MODES",
    "CONNECTIVITIES",
    "QUALITY_LEVELS",
    "binarize",
    "check_quality_level",
    "check_size",
    "check_threshold",
    "erode_mask",
    "gpu_available",
    "prepare_export",
    "resolve_device",
]
