"""Every raster and GeoPackage a run writes says how it was made (core.files.tags): the
algorithm, the plugin's version, the parameters that decide the result, and the DARTS_*
tags of its inputs (a DARTS probabilities.tif brings its tile id and model settings along;
exporttile's files keep prepareexport's settings from the binarized raster)."""

import os

from qgis.core import QgsProcessingParameterNumber

from ..core.files.atomic import AtomicFiles
from ..core.products.prepare_export_files import step_tags
from ..definitions import LONG_NAMES

# Parameters that change how a result is computed, never what it is.
NOT_RECORDED = {"DEVICE", "MEMORY_LIMIT", "DASK_SCHEDULER"}
# The band description (upstream's long_name) of each raster output.
OUTPUT_KINDS = {"OUTPUT_BINARIZED": "binarized", "OUTPUT_EXTENT": "extent", "OUTPUT_PROBABILITIES": "probabilities",
                "OUTPUT_SUBSET_BINARIZED": "binarized"}
SINGLE_OUTPUT_KINDS = {"binarize": "binarized", "erodemask": "extent", "qualitymask": "quality"}


class AtomicOutputs(AtomicFiles):
    """The run's outputs: written to temporary files beside their targets and moved into
    place together only when the whole run succeeded (core.files.atomic.AtomicFiles), with
    the `tags` every raster and GeoPackage of the run carries and each raster's band
    description in `descriptions` ({output path: text}), set by describe_outputs and given to
    the core's pipelines."""

    tags: dict = {}
    descriptions: dict = {}


def settings_of(algorithm, parameters, context) -> tuple[dict, list]:
    """({parameter: value as written}, the raster inputs' paths, whose DARTS_* tags the outputs
    inherit). Where inputs disagree, the most recently written one wins (by its DARTS_exportdate;
    on a tie the later input): exporttile takes the threshold from prepareexport's binarized
    raster, not DARTS' probabilities.tif it came from. Inputs are named by file name, not path."""
    settings, read = {}, []
    for definition in algorithm.parameterDefinitions():
        name = definition.name()
        if definition.isDestination() or name in NOT_RECORDED:
            continue
        kind = definition.type()
        if kind in ("raster", "multilayer"):
            files = [path for _, path in algorithm.raster_files(parameters, name, context)] if kind == "multilayer" else \
                [algorithm.raster_path(parameters, name, context, required=False) or ""]
            read += files
            settings[name] = ", ".join(os.path.basename(path) for path in files if path) or None
        elif kind == "enum":
            settings[name] = algorithm.parameterAsEnumString(parameters, name, context)
        elif kind == "number" and (parameters.get(name) not in (None, "") or definition.defaultValue() is not None):
            integer = definition.dataType() == QgsProcessingParameterNumber.Type.Integer  # (default if left out)
            settings[name] = (algorithm.parameterAsInt if integer else algorithm.parameterAsDouble)(
                parameters, name, context)
        elif kind == "number":
            settings[name] = None  # an optional number really left empty
        else:
            settings[name] = algorithm.parameterAsString(parameters, name, context)
    if "EDGE_EROSION_SIZE" in settings and settings["EDGE_EROSION_SIZE"] is None:  # the band actually used
        settings["EDGE_EROSION_SIZE"] = settings.get("MASK_EROSION_SIZE")
    return settings, read


def describe_outputs(algorithm, parameters, context, outputs) -> None:
    """Set the run's `outputs.tags` and the band description of each raster output."""
    outputs.tags = step_tags(algorithm.name(), *settings_of(algorithm, parameters, context))
    descriptions = {}
    for name, path in algorithm.output_paths(parameters, context):
        kind = SINGLE_OUTPUT_KINDS.get(algorithm.name()) if name == "OUTPUT" else OUTPUT_KINDS.get(name.split(" ")[0])
        if kind:
            descriptions[path] = LONG_NAMES[kind]
    outputs.descriptions = descriptions
