"""Rasters larger than memory in the algorithms: the MEMORY_LIMIT and DASK_SCHEDULER
parameters, the choice between reading whole rasters and the block-wise path, and running
the block-wise path (core.lazy.chunked + core.lazy.blockwise) with Processing's progress and cancel.
Both paths give the same pixels."""

import os

from qgis.core import QgsProcessingParameterString

from ..dependencies import missing_for_blocks

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


def available_memory_mb() -> float:
    """Memory available to new work, in MB (Linux: MemAvailable; elsewhere psutil; else 4 GB)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        return psutil.virtual_memory().available / 2 ** 20
    except ImportError:
        return 4096.0


def block_plan(algorithm, parameters, context, feedback, width: int, height: int, bytes_per_pixel: float):
    """None to process in memory, or the block side for the block-wise path: taken when the
    estimated need exceeds MEMORY_LIMIT, or when a dask scheduler is given."""
    value = parameters.get(MEMORY_LIMIT)
    limit = (algorithm.parameterAsInt(parameters, MEMORY_LIMIT, context) if value not in (None, "")
             else available_memory_mb() / 2)
    need = width * height * bytes_per_pixel / 2 ** 20
    address = algorithm.parameterAsString(parameters, DASK_SCHEDULER, context).strip()
    if need <= limit and not address:
        return None
    reason = (algorithm.tr("a dask scheduler was given") if address else
              algorithm.tr("it needs about {:.0f} MB, more than the memory limit of {:.0f} MB").format(need, limit))
    missing = missing_for_blocks(cluster=bool(address))
    if missing:
        raise ValueError(algorithm.tr("This run must go block by block ({}), which {}; or raise MEMORY_LIMIT.")
                         .format(reason, missing))
    from ..core.lazy.blockwise import block_size

    block = block_size(bytes_per_pixel, limit, workers=os.cpu_count() or 1)
    feedback.pushInfo(algorithm.tr("Processing in blocks of {0} x {0} pixels: {1}.").format(block, reason))
    return block


def run_blocks(algorithm, parameters, context, feedback, build, start=5.0, span=90.0):
    """Compute what `build(lock)` returns (dask Delayed values: stores into GeoTIFF windows and
    small results) on the local scheduler or DASK_SCHEDULER's cluster; returns their values."""
    from ..core.lazy.blockwise import compute, scheduler

    address = algorithm.parameterAsString(parameters, DASK_SCHEDULER, context).strip()
    with scheduler(address) as (client, lock):
        if client is not None:
            feedback.pushInfo(algorithm.tr("Computing on the dask cluster at {}").format(address))
        return compute(*build(lock), client=client, progress=algorithm.progress_reporter(feedback, start, span),
                       message=algorithm.tr("Processing blocks"))


def polygonize_in_blocks(algorithm, parameters, context, feedback, outputs, path, binary, grid, probabilities,
                         start=5.0, span=90.0, layout=None):
    """Polygonize the lazy `binary` (objects crossing blocks become one feature, statistics over
    all of their pixels) into the vector output `path` of the run; the object count."""
    return algorithm.write_polygons(path, context, outputs, binary, grid, probabilities, None,
                                    blocks=lambda build: run_blocks(algorithm, parameters, context, feedback, build,
                                                                    start, span), layout=layout)
