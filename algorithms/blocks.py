"""Rasters larger than memory in the algorithms: the MEMORY_LIMIT and DASK_SCHEDULER
parameters, read for the core's pipelines on files (which choose in memory or block by block
themselves) and for exporttile's choice between them. Both paths give the same pixels."""

from qgis.core import QgsProcessingParameterString

MEMORY_LIMIT = "MEMORY_LIMIT"
DASK_SCHEDULER = "DASK_SCHEDULER"


def add_block_parameters(algorithm):
    """The advanced MEMORY_LIMIT (MB, empty = half of the available memory) and DASK_SCHEDULER."""
    algorithm.add_int(MEMORY_LIMIT, "Memory limit (MB; empty = half of the available memory)", None, optional=True,
                      advanced=True, minimum=1,
                      help_text="Rasters whose processing would need more memory than this are processed block by "
                                "block, reading and writing GeoTIFF windows, never the whole raster; the results are "
                                "the same.")
    add_scheduler_parameter(algorithm, "e.g. tcp://127.0.0.1:8786: the blocks are computed on that dask.distributed "
                                       "cluster, whose workers must see the input and output files.")


def add_scheduler_parameter(algorithm, help_text):
    """The advanced DASK_SCHEDULER: the address of a dask.distributed cluster to compute on."""
    address = QgsProcessingParameterString(
        DASK_SCHEDULER, algorithm.tr("Dask scheduler address (empty = local processing)"), optional=True,
        defaultValue="")
    algorithm.add_parameter_with_help(address, True, help_text)


def block_plan(algorithm, parameters, context, feedback, width: int, height: int, bytes_per_pixel: float):
    """None to process in memory, or the block side for the block-wise path (the rule:
    core.products.prepare_export_files.block_plan, with MEMORY_LIMIT and DASK_SCHEDULER)."""
    from ..core.products.prepare_export_files import block_plan as plan

    block, reason = plan(width, height, bytes_per_pixel, memory_limit(algorithm, parameters, context),
                         scheduler_address(algorithm, parameters, context))
    if block:
        feedback.pushInfo(algorithm.tr("Processing in blocks of {0} x {0} pixels: {1}.").format(block, reason))
    return block


def memory_limit(algorithm, parameters, context):
    """MEMORY_LIMIT in MB, or None when it is left empty (half of the available memory)."""
    value = parameters.get(MEMORY_LIMIT)
    return algorithm.parameterAsInt(parameters, MEMORY_LIMIT, context) if value not in (None, "") else None


def scheduler_address(algorithm, parameters, context) -> str:
    return algorithm.parameterAsString(parameters, DASK_SCHEDULER, context).strip()
