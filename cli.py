"""The command line without QGIS: `python3 -m darts_postprocessing <algorithm> KEY=VALUE ...`,
for HPC nodes and containers where DARTS runs with GDAL and numpy but no QGIS.

The algorithms' parameters keep qgis_process's names and defaults (algorithms/*.py declares
them for Processing; this module declares them again without QGIS, and tests/test_cli.py and
tests/qgis/test_cli_matches_qgis_process.py hold both to the same list and the same files):
`KEY=VALUE` as after qgis_process's `--`, or `--KEY VALUE`; choices by their value names
(definitions.py). A failure is one line on stderr and a non-zero exit; Ctrl-C cancels and
leaves no output behind (the core writes through AtomicFiles); progress is a percentage line on
stderr when it is a terminal (not with --quiet).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass

from .definitions import (
    BINARIZATIONS,
    BOUNDARY_MODES,
    CONNECTIVITIES,
    DEFAULT_TARGET_CRS,
    DEVICES,
    GROUPINGS,
    POLYGON_LAYOUTS,
    PROBABILITY_SCALES,
    QUALITY_LEVELS,
    QUALITY_SOURCES,
    SCORES,
    STATISTICS_SCALES,
)

PROG = "python3 -m darts_postprocessing"
CANCELED = "Canceled: no output was written."
# Parameters that change how a result is computed, never what it is (not in the files' tags).
NOT_RECORDED = {"DEVICE", "MEMORY_LIMIT", "DASK_SCHEDULER"}
INT_MAX = 2 ** 31 - 1
DOUBLE_MAX = sys.float_info.max  # a QGIS number parameter without a maximum
REPEATABLE = ("rasters", "layers")  # given once per layer, a list (qgis_process: the parameter repeated)


class UsageError(Exception):
    """A parameter is missing, unknown or has a bad value (exit status 2)."""


@dataclass(frozen=True)
class Parameter:
    """One parameter as qgis_process takes it. `kind`: folder, raster, rasters (repeatable),
    layer (a vector file, path|layername=NAME), layers (repeatable layer), number, integer,
    choice, string, boolean, crs, or an output: vector_output (.gpkg), folder_output, file_output."""

    name: str
    kind: str
    label: str
    default: object = None
    optional: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None

    @property
    def is_output(self) -> bool:
        return self.kind.endswith("_output")


def _int(name, label, default, optional=False, minimum=0):
    return Parameter(name, "integer", label, default, optional, minimum=minimum, maximum=INT_MAX)


def _choice(name, label, choices, default):
    return Parameter(name, "choice", label, default, choices=tuple(choices))


THRESHOLD = Parameter("THRESHOLD", "number", "Probability threshold (object where p > threshold)", 0.5,
                      minimum=0.0, maximum=1.0)
MASK_EROSION_SIZE = _int("MASK_EROSION_SIZE", "Mask erosion size (pixels)", 10)
EDGE_EROSION_SIZE = _int("EDGE_EROSION_SIZE", "Edge erosion size (pixels; Not set = mask erosion size)", None, True)
MIN_OBJECT_SIZE = _int("MIN_OBJECT_SIZE", "Minimum object size (pixels)", 32)
QUALITY_LEVEL = _choice("QUALITY_LEVEL", "Quality level", QUALITY_LEVELS, "low_quality")
MAX_EXCLUDED_SHARE = Parameter("MAX_EXCLUDED_SHARE", "number", "Largest excluded share of an object", 0.0,
                               minimum=0.0, maximum=0.99)
BOUNDARY = _choice("BOUNDARY", "Boundary objects", BOUNDARY_MODES, "remove")
SIZE_CONNECTIVITY = _choice("SIZE_CONNECTIVITY", "Connectivity for object sizes", CONNECTIVITIES, "8")
DEVICE = _choice("DEVICE", "Device", DEVICES, "auto")
PROBABILITY_SCALE = _choice("PROBABILITY_SCALE", "Probability scale", PROBABILITY_SCALES, "auto")
STATISTICS_SCALE = _choice("STATISTICS_SCALE", "Statistics scale", STATISTICS_SCALES, "fraction")
POLYGON_LAYOUT = _choice("POLYGON_LAYOUT", "Polygon features", POLYGON_LAYOUTS, "objects")
MEMORY_LIMIT = _int("MEMORY_LIMIT", "Memory limit (MB; empty = half of the available memory)", None, True, minimum=1)
DASK_SCHEDULER = Parameter("DASK_SCHEDULER", "string", "Dask scheduler address (empty = local processing)", "",
                           optional=True)

ALGORITHMS = {
    "processtiles": ("Process tiles into one map: many DARTS tile folders in, one merged GeoPackage of thaw-slump "
                     "polygons out.", [
        Parameter("INPUT_FOLDER", "folder", "Folder of tile folders"),
        THRESHOLD, MASK_EROSION_SIZE, EDGE_EROSION_SIZE, MIN_OBJECT_SIZE, QUALITY_LEVEL,
        Parameter("TARGET_CRS", "crs", "Target CRS", DEFAULT_TARGET_CRS),
        Parameter("EXCLUDE", "layer", "Exclusion polygons (e.g. water)", optional=True),
        MAX_EXCLUDED_SHARE, BOUNDARY, SIZE_CONNECTIVITY, DEVICE,
        _choice("GROUP_BY", "Merge tiles", GROUPINGS, "year"),
        _choice("BINARIZATION", "Objects", BINARIZATIONS, "recompute"),
        Parameter("SUBSET", "string", "Ensemble member (probabilities-<name>.tif)", optional=True),
        PROBABILITY_SCALE, STATISTICS_SCALE,
        _int("WORKERS", "Worker processes", os.cpu_count() or 1, minimum=1),
        DASK_SCHEDULER,
        Parameter("STOP_ON_ERROR", "boolean", "Stop at the first tile that fails", False),
        Parameter("OUTPUT", "vector_output", "Merged slump polygons"),
        Parameter("OUTPUT_TILES", "folder_output", "Tile outputs (binarized, extent, polygons per tile)", optional=True),
        Parameter("OUTPUT_REPORT", "file_output", "Report", optional=True),
    ]),
    "polygonize": ("Polygonize objects: every 8-connected object of a binarized raster (0/1) as one polygon "
                   "feature, with the probabilities' statistics inside it.", [
        Parameter("BINARIZED", "raster", "Binarized objects (0/1)"),
        Parameter("PROBABILITIES", "raster", "Probabilities", optional=True),
        PROBABILITY_SCALE, STATISTICS_SCALE, POLYGON_LAYOUT, MEMORY_LIMIT, DASK_SCHEDULER,
        Parameter("OUTPUT", "vector_output", "Polygons"),
    ]),
    "exporttile": ("Export DARTS tile folder: the files DARTS' exporter writes for a tile, from a prepareexport "
                   "run's binarized and extent rasters and its probabilities.", [
        Parameter("PROBABILITIES", "raster", "Probabilities"),
        Parameter("BINARIZED", "raster", "Binarized segmentation (0/1)"),
        Parameter("EXTENT", "raster", "Extent (0/1)"),
        Parameter("SUBSET_PROBABILITIES", "rasters", "Ensemble subset probabilities", optional=True),
        Parameter("SUBSET_BINARIZED", "rasters", "Binarized ensemble subsets (from Prepare export)", optional=True),
        PROBABILITY_SCALE, POLYGON_LAYOUT, MEMORY_LIMIT, DASK_SCHEDULER,
        Parameter("OUTPUT_FOLDER", "folder_output", "Tile folder"),
    ]),
    "prepareexport": ("Prepare export: DARTS' whole postprocessing step on a probabilities raster.", [
        Parameter("PROBABILITIES", "raster", "Probabilities"),
        Parameter("QUALITY_MASK", "raster", "Quality mask (0/1/2)", optional=True),
        THRESHOLD,
        Parameter("THRESHOLDS", "string", "Several thresholds (e.g. 0.4,0.5,0.6; replaces the threshold)", "",
                  optional=True),
        MASK_EROSION_SIZE, EDGE_EROSION_SIZE, MIN_OBJECT_SIZE, QUALITY_LEVEL,
        Parameter("SUBSET_PROBABILITIES", "rasters", "Ensemble subset probabilities", optional=True),
        Parameter("EXCLUDE", "layer", "Exclusion mask (e.g. water; polygons or raster)", optional=True),
        MAX_EXCLUDED_SHARE, BOUNDARY, SIZE_CONNECTIVITY, DEVICE, PROBABILITY_SCALE, STATISTICS_SCALE,
        MEMORY_LIMIT, DASK_SCHEDULER,
        Parameter("OUTPUT_BINARIZED", "raster_output", "Binarized segmentation"),
        Parameter("OUTPUT_EXTENT", "raster_output", "Extent"),
        Parameter("OUTPUT_PROBABILITIES", "raster_output", "Masked probabilities", optional=True),
        Parameter("OUTPUT_POLYGONS", "vector_output", "Object polygons", optional=True),
        Parameter("OUTPUT_REPORT", "file_output", "Report", optional=True),
    ]),
    "evaluate": ("Evaluate against reference: scores of the postprocessed map against slumps digitized by hand, for "
                 "each threshold x minimum object size, and the best setting.", [
        Parameter("PROBABILITIES", "raster", "Probabilities (one raster)", optional=True),
        Parameter("TILES", "rasters", "Or: tiles (their probabilities.tif)", optional=True),
        Parameter("INPUT_FOLDER", "folder", "Or: folder of tile folders", optional=True),
        Parameter("YEAR", "integer", "Year of the reference (tiles of several years)", None, True, minimum=1900,
                  maximum=2200),
        Parameter("QUALITY_MASK", "raster", "Quality mask (0/1/2)", optional=True),
        Parameter("EXTENT", "raster", "Extent (0/1, used as given)", optional=True),
        Parameter("REFERENCE", "layer", "Reference slumps (polygons)"),
        THRESHOLD,
        Parameter("THRESHOLDS", "string", "Thresholds to sweep (e.g. 0.3,0.4,0.5,0.6,0.7; replaces the threshold)", "",
                  optional=True),
        MIN_OBJECT_SIZE,
        Parameter("MIN_OBJECT_SIZES", "string", "Minimum sizes to sweep (e.g. 0,16,32,64; replaces the minimum size)",
                  "", optional=True),
        MASK_EROSION_SIZE, EDGE_EROSION_SIZE, QUALITY_LEVEL,
        Parameter("MIN_IOU", "number", "Minimum IoU for a match", 0.5, minimum=0.001, maximum=1.0),
        _choice("BEST_BY", "Best setting by", SCORES, "object_f1"),
        Parameter("EXCLUDE", "layer", "Exclusion mask (e.g. water; polygons or raster)", optional=True),
        MAX_EXCLUDED_SHARE, BOUNDARY, SIZE_CONNECTIVITY, DEVICE, PROBABILITY_SCALE,
        Parameter("OUTPUT_TABLE", "file_output", "Scores per setting (CSV)"),
        Parameter("OUTPUT_FALSE_POSITIVES", "vector_output", "False positives (best setting)", optional=True),
        Parameter("OUTPUT_MISSED", "vector_output", "Missed reference slumps (best setting)", optional=True),
        Parameter("OUTPUT_REPORT", "file_output", "Report", optional=True),
    ]),
    "erodemask": ("Erode quality mask: the quality mask's valid area, eroded and cut off at the raster edges, as "
                  "DARTS computes the extent in which predictions are trusted.", [
        Parameter("MASK", "raster", "Quality mask"),
        QUALITY_LEVEL,
        _int("SIZE", "Erosion size (disk radius, pixels)", 10),
        _int("EDGE_SIZE", "Edge size (pixels; Not set = erosion size)", None, True),
        DEVICE, MEMORY_LIMIT, DASK_SCHEDULER,
        Parameter("OUTPUT", "raster_output", "Eroded mask"),
    ]),
    "binarize": ("Binarize probabilities: threshold, drop objects touching invalid pixels of the mask, drop small "
                 "objects, as DARTS' binarize step.", [
        Parameter("PROBABILITIES", "raster", "Probabilities"),
        Parameter("MASK", "raster", "Valid mask (0 = invalid)", optional=True),
        THRESHOLD, MIN_OBJECT_SIZE, SIZE_CONNECTIVITY, DEVICE, PROBABILITY_SCALE, MEMORY_LIMIT, DASK_SCHEDULER,
        Parameter("OUTPUT", "raster_output", "Binarized segmentation"),
    ]),
    "qualitymask": ("Make quality mask: a DARTS quality mask (0 invalid, 1 low, 2 high quality) from a Sentinel-2 "
                    "SCL band, a Planet UDM2 raster or observation counts.", [
        Parameter("INPUT", "raster", "SCL, UDM2 or observation count raster"),
        _choice("SOURCE", "Input kind", QUALITY_SOURCES, "scl"),
        Parameter("OUTPUT", "raster_output", "Quality mask"),
    ]),
    "compareyears": ("Compare years: which slumps are new, grew, shrank, stayed stable or are gone between each pair "
                     "of consecutive years of DARTS maps.", [
        Parameter("INPUT", "layers", "Yearly slump maps"),
        Parameter("YEAR_FIELD", "string", "Year field", "year"),
        Parameter("COVERAGE", "layers", "Coverage per year (observed area)", optional=True),
        Parameter("TOLERANCE", "number", "Stable within (share of the earlier area)", 0.1, minimum=0.0,
                  maximum=DOUBLE_MAX),
        Parameter("OBSERVED_SHARE", "number", "Observed share", 0.5, minimum=0.001, maximum=1.0),
        Parameter("OUTPUT", "vector_output", "Changes"),
        Parameter("OUTPUT_REPORT", "file_output", "Report", optional=True),
    ]),
}
OUTPUT_EXTENSIONS = {"vector_output": ("GeoPackage", (".gpkg",)), "raster_output": ("GeoTIFF", (".tif", ".tiff"))}


# -- reading the command line -----------------------------------------------------------------------
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (UsageError) instead of the usage and exit."""

    def error(self, message):
        raise UsageError(message)


class Once(argparse.Action):
    """A parameter given once; twice is an error (qgis_process would make a list of it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest) is not None:
            raise UsageError(f"{self.dest} is given twice")
        setattr(namespace, self.dest, values)


def parameter_help(parameter: Parameter) -> str:
    text = parameter.label
    if parameter.choices:
        text += f"; one of {', '.join(parameter.choices)}"
    if parameter.kind in REPEATABLE:
        text += "; repeat for several"
    if parameter.kind == "boolean":
        text += "; true or false"
    if parameter.default not in (None, ""):
        default = str(parameter.default).lower() if parameter.kind == "boolean" else parameter.default
        text += f" (default: {default})"
    elif not parameter.optional:
        text += " (required)"
    return text.replace("%", "%%")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="DARTS postprocessing without QGIS: the algorithms of the QGIS plugin with "
                                           "qgis_process's parameter names and defaults. Parameters as KEY=VALUE "
                                           "(as after qgis_process's --) or --KEY VALUE.",
                    epilog=f"Example: {PROG} processtiles INPUT_FOLDER=tiles/ OUTPUT=region.gpkg WORKERS=2. "
                           f"'{PROG} ALGORITHM --help' lists its parameters.")
    commands = parser.add_subparsers(dest="algorithm", metavar="ALGORITHM", parser_class=Parser)
    for name, (description, parameters) in ALGORITHMS.items():
        command = commands.add_parser(name, help=description.split(":")[0], description=description,
                                      usage=f"{PROG} {name} [-h] [-q] KEY=VALUE ... (or --KEY VALUE ...)",
                                      allow_abbrev=False)
        command.add_argument("-q", "--quiet", action="store_true", help="no progress and no messages, only errors "
                                                                        "and the results")
        group = command.add_argument_group("parameters (KEY=VALUE or --KEY VALUE)")
        for parameter in parameters:
            group.add_argument(f"--{parameter.name}", dest=parameter.name, metavar="VALUE", help=parameter_help(parameter),
                               action="append" if parameter.kind in REPEATABLE else Once)
    return parser


KEY_VALUE = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def normalized(argv: list[str]) -> list[str]:
    """argv with KEY=VALUE and --KEY VALUE as --KEY=VALUE (keys in upper case, as qgis_process
    spells them; a value may then start with -), a lone `--` (qgis_process's separator)
    dropped, and unknown parameters refused by name."""
    if not argv or argv[0] not in ALGORITHMS:
        return argv
    known = {parameter.name for parameter in ALGORITHMS[argv[0]][1]}
    result, expecting = [argv[0]], None
    for token in argv[1:]:
        if expecting:  # the value of a --KEY before it, whatever it looks like
            result.append(f"--{expecting}={token}")
            expecting = None
            continue
        if token == "--" or token in ("-h", "--help", "-q", "--quiet"):
            if token != "--":
                result.append(token)
            continue
        match = KEY_VALUE.match(token.removeprefix("--"))
        if match:
            key, value = match[1].upper(), match[2]
        elif token.startswith("-"):
            key, value = token.lstrip("-").upper(), None
        else:
            raise UsageError(f"{token!r} is no parameter: give KEY=VALUE or --KEY VALUE")
        if key not in known:
            raise UsageError(f"unknown parameter {key} for {argv[0]} (its parameters: {', '.join(sorted(known))})")
        if value is None:
            expecting = key
        else:
            result.append(f"--{key}={value}")
    if expecting:
        raise UsageError(f"--{expecting} needs a value")
    return result


def converted(parameter: Parameter, value):
    """The value of one parameter as the core takes it; UsageError for a bad one."""
    name = parameter.name
    if value is None or (value == "" and parameter.kind not in ("string",)):
        if parameter.optional or parameter.default is not None:
            return parameter.default
        raise UsageError(f"{name} is required ({parameter.label})")
    if parameter.kind in REPEATABLE:
        return [converted(Parameter(name, parameter.kind[:-1], parameter.label), item) for item in value]
    if parameter.kind == "choice":
        if value not in parameter.choices:
            raise UsageError(f"{name}: {value!r} is not one of {', '.join(parameter.choices)}")
        return value
    if parameter.kind in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"{name}: {value!r} is not a number") from None
        if parameter.kind == "integer":
            if not number.is_integer():
                raise UsageError(f"{name}: {value!r} is not a whole number")
            number = int(number)
        if (parameter.minimum is not None and number < parameter.minimum) or \
                (parameter.maximum is not None and number > parameter.maximum):
            high = "" if parameter.maximum in (None, INT_MAX, DOUBLE_MAX) else f" and at most {parameter.maximum:g}"
            raise UsageError(f"{name}: {value} is out of range (at least {parameter.minimum:g}{high})")
        return number
    if parameter.kind == "boolean":
        words = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
        if value.strip().lower() not in words:
            raise UsageError(f"{name}: {value!r} is not true or false")
        return words[value.strip().lower()]
    if parameter.kind == "raster" and not os.path.isfile(value):
        raise UsageError(f"{name}: {value!r} is not a file")
    if parameter.kind == "folder" and not os.path.isdir(value):
        raise UsageError(f"{name}: {value!r} is not a folder")
    if parameter.kind == "layer" and not os.path.isfile(value.split("|")[0]):
        raise UsageError(f"{name}: {value.split('|')[0]!r} does not exist")
    if parameter.kind in OUTPUT_EXTENSIONS:
        kind, extensions = OUTPUT_EXTENSIONS[parameter.kind]
        if value.startswith(("ogr:", "memory:", "postgres")) or "|" in value:
            raise UsageError(f"{name}: give a file path ({kind}); QGIS's data source forms are not read here")
        if not value.lower().endswith(extensions):
            raise UsageError(f"{name}: written as {kind}, so the file must end in {' or '.join(extensions)} "
                             f"(got {os.path.basename(value)!r})")
    return value


def parse(argv: list[str]) -> tuple[str, dict, bool]:
    """(algorithm, {parameter: value}, quiet) of a command line; UsageError for a bad one
    (--help prints and exits)."""
    parser = build_parser()
    arguments = parser.parse_args(normalized(argv))
    if arguments.algorithm is None:
        raise UsageError(f"give an algorithm: one of {', '.join(ALGORITHMS)} ('{PROG} --help' says more)")
    values = {parameter.name: converted(parameter, getattr(arguments, parameter.name))
              for parameter in ALGORITHMS[arguments.algorithm][1]}
    return arguments.algorithm, values, arguments.quiet


# -- progress and messages --------------------------------------------------------------------------
class Console:
    """Progress as one percentage line on stderr (a terminal only, not `quiet`), messages
    on stderr (warnings always, the rest not when `quiet`)."""

    def __init__(self, name: str, quiet: bool = False, stream=None):
        self.name, self.quiet, self.stream = name, quiet, stream or sys.stderr
        self.live = not quiet and self.stream.isatty()
        self.shown = None

    def progress(self, fraction: float, message: str) -> None:
        if not self.live:
            return
        line = f"{self.name}: {100 * min(max(fraction, 0.0), 1.0):3.0f}% {message}"
        if line != self.shown:
            width = 79
            with contextlib.suppress(OSError):
                width = os.get_terminal_size(self.stream.fileno()).columns - 1
            self.stream.write("\r" + line[:width].ljust(min(width, max(len(self.shown or ""), len(line)))))
            self.stream.flush()
            self.shown = line

    def end_line(self) -> None:
        if self.shown is not None:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = None

    def info(self, text: str) -> None:
        if not self.quiet:
            self.end_line()
            print(text, file=self.stream)

    def warning(self, text: str) -> None:
        self.end_line()
        print(f"warning: {text}", file=self.stream)

    def log(self, sentence: str, warning: bool) -> None:
        """A core pipeline's `log(sentence, warning)`."""
        (self.warning if warning else self.info)(sentence)


class ConsoleLog(logging.Handler):
    """The core's logged warnings as the console's warning lines."""

    def __init__(self, console: Console):
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record):
        self.console.warning(record.getMessage())


# -- what the runs share ----------------------------------------------------------------------------
def run_tags(algorithm: str, values: dict) -> dict:
    """The tags every file of the run carries, as the algorithm's (algorithms/provenance.py):
    the parameters that decide the result (inputs by file name), the DARTS_* tags of the
    raster inputs (the most recently exported winning) and who wrote it."""
    from .core.products.prepare_export_files import step_tags

    settings, read = {}, []
    for parameter in ALGORITHMS[algorithm][1]:
        if parameter.is_output or parameter.name in NOT_RECORDED:
            continue
        value = values[parameter.name]
        if parameter.kind in ("raster", "rasters", "layers"):  # by file name (a layer's without |layername=)
            files = [path.split("|")[0] for path in (value if isinstance(value, list) else [value]) if path]
            read += files
            settings[parameter.name] = ", ".join(os.path.basename(path) for path in files) or None
        elif parameter.kind in ("number", "integer"):
            settings[parameter.name] = None if value is None else (int(value) if parameter.kind == "integer"
                                                                   else float(value))
        else:
            settings[parameter.name] = "" if value is None else value
    if "EDGE_EROSION_SIZE" in settings and settings["EDGE_EROSION_SIZE"] is None:  # the band actually used
        settings["EDGE_EROSION_SIZE"] = settings.get("MASK_EROSION_SIZE")
    return step_tags(algorithm, settings, read)


def check_outputs(algorithm: str, values: dict, inputs) -> None:
    """Before any computing, by the algorithms' rule (core.files.atomic.check_outputs): each
    output can be written, none is an input, no two are the same file."""
    from .core.files.atomic import check_outputs as check

    check([(parameter.name, values[parameter.name], parameter.kind == "folder_output")
           for parameter in ALGORITHMS[algorithm][1] if parameter.is_output], inputs)


def block_plan(values: dict, width: int, height: int, bytes_per_pixel: float, console: Console) -> int | None:
    """None to process in memory, or the block side of the block-wise path, by the core's rule
    (core.products.prepare_export_files.block_plan) with MEMORY_LIMIT and DASK_SCHEDULER."""
    from .core.products.prepare_export_files import block_plan as plan

    block, reason = plan(width, height, bytes_per_pixel, values["MEMORY_LIMIT"] or None,
                         scheduler_address(values))
    if block:
        console.info(f"Processing in blocks of {block} x {block} pixels: {reason}.")
    return block


def scheduler_address(values: dict) -> str | None:
    """The DASK_SCHEDULER given (an address of a dask.distributed scheduler), or None."""
    return (values["DASK_SCHEDULER"] or "").strip() or None


def device_of(values: dict, console: Console) -> str:
    """The device name the core takes for DEVICE (core.kernels.devices.usable_device)."""
    from .core.kernels.devices import usable_device

    device, warning = usable_device(values["DEVICE"])
    if warning:
        console.warning(warning)
    return device


def percent_note(path: str, what: str, scale: str, console: Console) -> None:
    from .core.files.geotiff import percent_scale_doubt

    doubt = percent_scale_doubt(path, what, scale)
    if doubt:
        console.warning(doubt)


def exclusion_source(value: str | None, name: str = "EXCLUDE"):
    """(file, layer or None, filter or None) of an EXCLUDE value (or of the vector layer
    parameter `name`): a path, with QGIS's |layername=NAME, |layerid=N or |subset=FILTER after it."""
    if not value:
        return None
    path, *options = value.split("|")
    found = dict(option.partition("=")[::2] for option in options)
    unknown = sorted(set(found) - {"layername", "layerid", "subset"})
    if unknown:
        raise ValueError(f"{name}: unknown option |{unknown[0]}= (use |layername=, |layerid= or |subset=)")
    layer = found.get("layername") or None
    if layer is None and found.get("layerid", "") != "":
        from .core.files.gdal import open_read_only

        with open_read_only(path, "vector") as dataset:
            layer = dataset.GetLayer(int(found["layerid"])).GetName()
    return path, layer, found.get("subset") or None


def target_crs(value: str) -> str:
    """TARGET_CRS as the algorithm records it: AUTHORITY:CODE where it has one, else as given;
    a geographic CRS is refused."""
    from .core.files.gdal import spatial_reference

    try:
        srs = spatial_reference(value)
    except RuntimeError:
        raise ValueError(f"TARGET_CRS: {value!r} is not a valid CRS") from None
    if srs.IsGeographic():
        raise ValueError(f"TARGET_CRS: {value} is geographic; choose a projected CRS (the default "
                         f"{DEFAULT_TARGET_CRS} covers the Arctic)")
    name, code = srs.GetAuthorityName(None), srs.GetAuthorityCode(None)
    return f"{name}:{code}" if name and code else value


# -- the algorithms ---------------------------------------------------------------------------------
def run_processtiles(values: dict, console: Console) -> dict:
    """darts:processtiles: the core's one pipeline on files (core.regions.process_tiles), as the
    algorithm calls it, all files or none."""
    from .core.files.atomic import AtomicFiles
    from .core.files.layers import layer_name
    from .core.regions.merge import coverage_layer
    from .core.regions.process_tiles import TilesOutputs, process_tiles_files
    from .core.regions.tiles import TileSettings

    target = target_crs(values["TARGET_CRS"])
    settings = TileSettings.from_parameters(
        values, device=device_of(values, console), subset=(values["SUBSET"] or "").strip() or None,
        binarization=values["BINARIZATION"], group_by=values["GROUP_BY"], exclude=exclusion_source(values["EXCLUDE"]))
    exclusion = settings.exclude[0] if settings.exclude else ""
    check_outputs("processtiles", values, [exclusion])
    output = values["OUTPUT"]
    outputs = TilesOutputs(output, None, values["OUTPUT_TILES"] or None, values["OUTPUT_REPORT"] or None)
    with AtomicFiles([exclusion]) as files:
        summary = process_tiles_files(values["INPUT_FOLDER"], outputs, target, settings, workers=values["WORKERS"],
                                      address=scheduler_address(values),
                                      stop_on_error=values["STOP_ON_ERROR"], progress=console.progress, files=files,
                                      log=console.log)
    results = {"OUTPUT": output, "OUTPUT_COVERAGE": f"{output}|layername={coverage_layer(layer_name(output))}",
               "TILES_PROCESSED": len(summary.tiles), "TILES_SKIPPED": len(summary.skipped),
               "FEATURES": summary.features}
    if outputs.tiles:
        results["OUTPUT_TILES"] = outputs.tiles
    if outputs.report:
        results["OUTPUT_REPORT"] = outputs.report
    return results


def run_polygonize(values: dict, console: Console) -> dict:
    """darts:polygonize: the core's one pipeline on files (core.products.polygonize_files), as
    the algorithm calls it."""
    from .core.files.atomic import AtomicFiles
    from .core.products.polygonize_files import PolygonizeSettings, polygonize_files

    binarized, probabilities = values["BINARIZED"], values["PROBABILITIES"]
    settings = PolygonizeSettings(scale=values["PROBABILITY_SCALE"], statistics=values["STATISTICS_SCALE"],
                                  parts=values["POLYGON_LAYOUT"] == "parts", memory_limit_mb=values["MEMORY_LIMIT"] or None,
                                  dask_scheduler=scheduler_address(values))
    check_outputs("polygonize", values, [binarized, probabilities])
    with AtomicFiles([binarized, probabilities]) as files:
        summary = polygonize_files(binarized, values["OUTPUT"], probabilities, settings, console.progress, files=files,
                                   tags=run_tags("polygonize", values),
                                   log=console.log)
    return {"OUTPUT": summary.output}


def layers_of(paths) -> list[tuple[str, str]]:
    """(layer name, file) of raster files, the name as QGIS gives a file's layer: its file name
    without the extension."""
    return [(os.path.splitext(os.path.basename(path))[0], path) for path in paths or []]


def subsets_of(values: dict) -> dict:
    """{subset: (probabilities file, binarized file)} as darts:exporttile pairs them
    (core.products.export.pair_subsets)."""
    from .core.products.export import pair_subsets

    return pair_subsets(layers_of(values["SUBSET_PROBABILITIES"]), layers_of(values["SUBSET_BINARIZED"]))


def run_exporttile(values: dict, console: Console) -> dict:
    from .core.files.geoparquet import geoparquet_support
    from .core.files.tags import PREFIX, inference_record
    from .core.products.export import export_bytes, export_sources, export_tile_files, parquet_names

    probabilities, binarized, extent = values["PROBABILITIES"], values["BINARIZED"], values["EXTENT"]
    subsets = subsets_of(values)
    grid, _ = export_sources(probabilities, binarized, extent, subsets)
    scale = values["PROBABILITY_SCALE"]
    percent_note(probabilities, "PROBABILITIES", scale, console)
    if grid.area_note():
        console.warning(grid.area_note())
    check_outputs("exporttile", values, [probabilities, binarized, extent,
                                         *[path for pair in subsets.values() for path in pair]])
    folder = values["OUTPUT_FOLDER"]
    tags = run_tags("exporttile", values)
    tags.setdefault(PREFIX + "tileid", os.path.basename(os.path.abspath(folder)))
    inference_record(tags)  # a tag that darts_inference.json cannot hold fails before any work
    block = block_plan(values, grid.width, grid.height, export_bytes(len(subsets)), console)
    written = export_tile_files(probabilities, binarized, extent, folder, subsets=subsets, scale=scale,
                                parts=values["POLYGON_LAYOUT"] == "parts", tags=tags, block=block,
                                address=scheduler_address(values), progress=console.progress)
    if any(kind.startswith(("segments_parquet", "extent_parquet")) for kind in written):  # else the core warned
        console.info(f"GeoParquet written: {', '.join(parquet_names(subsets))} (with {geoparquet_support()[0]}).")
    console.info(f"Tile written to {os.path.abspath(folder)}")
    return {"OUTPUT_FOLDER": folder, **{EXPORT_OUTPUTS[kind]: path for kind, path in written.items()
                                        if kind in EXPORT_OUTPUTS}}


# darts:exporttile's outputs, by the kind of file (core.products.export.tile_files).
EXPORT_OUTPUTS = {"probabilities": "OUTPUT_PROBABILITIES", "binarized": "OUTPUT_BINARIZED", "extent": "OUTPUT_EXTENT",
                  "segments": "OUTPUT_SEGMENTS", "extent_polygons": "OUTPUT_EXTENT_POLYGONS",
                  "thumbnail": "OUTPUT_THUMBNAIL", "inference": "OUTPUT_METADATA", "quicklook": "OUTPUT_QUICKLOOK",
                  "segments_parquet": "OUTPUT_SEGMENTS_PARQUET", "extent_parquet": "OUTPUT_EXTENT_PARQUET"}


def run_prepareexport(values: dict, console: Console) -> dict:
    """darts:prepareexport: the core's one pipeline on files (core.products.prepare_export_files),
    as the algorithm calls it, and its HTML report (core.products.report), all files or none."""
    from .core.files.atomic import AtomicFiles
    from .core.kernels.checks import parse_thresholds
    from .core.products.export import subset_names
    from .core.products.prepare_export_files import (PrepareExportInputs, PrepareExportOutputs,
                                                     PrepareExportSettings, prepare_export_files)

    layers = layers_of(values["SUBSET_PROBABILITIES"])
    subsets = dict(zip(subset_names(name for name, _ in layers), (path for _, path in layers)))
    inputs = PrepareExportInputs(values["PROBABILITIES"], values["QUALITY_MASK"] or None, subsets)
    outputs = PrepareExportOutputs(values["OUTPUT_BINARIZED"], values["OUTPUT_EXTENT"],
                                   values["OUTPUT_PROBABILITIES"] or None, values["OUTPUT_POLYGONS"] or None)
    settings = PrepareExportSettings.from_parameters(
        values, device=device_of(values, console), exclude=exclusion_source(values["EXCLUDE"]),
        thresholds=tuple(value for _, value in parse_thresholds(values["THRESHOLDS"] or "", "THRESHOLDS")),
        memory_limit_mb=values["MEMORY_LIMIT"] or None, dask_scheduler=scheduler_address(values))
    exclusion = settings.exclude[0] if settings.exclude else ""
    check_outputs("prepareexport", values, [inputs.probabilities, inputs.quality, *subsets.values(), exclusion])
    with AtomicFiles(inputs.paths + [exclusion]) as files:
        summary = prepare_export_files(inputs, outputs, settings, console.progress, files=files,
                                       log=console.log)
        if values["OUTPUT_REPORT"]:
            from .core.products.report import prepare_export_report

            with open(files.reserve(values["OUTPUT_REPORT"]), "w", encoding="utf-8") as handle:
                handle.write(prepare_export_report(summary))
    results = {"OUTPUT_EXTENT": summary.extent}
    if summary.probabilities:
        results["OUTPUT_PROBABILITIES"] = summary.probabilities
    if summary.several:
        results["OUTPUT_THRESHOLD_BINARIZED"] = [run.binarized for run in summary.runs]
        if outputs.polygons:
            results["OUTPUT_THRESHOLD_POLYGONS"] = [run.polygons for run in summary.runs]
    else:
        results["OUTPUT_BINARIZED"] = summary.runs[0].binarized
        if outputs.polygons:
            results["OUTPUT_POLYGONS"] = summary.runs[0].polygons
    subset_files = [path for run in summary.runs for path in run.subsets.values()]
    if subset_files:
        results["OUTPUT_SUBSET_BINARIZED"] = subset_files
    if values["OUTPUT_REPORT"]:
        results["OUTPUT_REPORT"] = values["OUTPUT_REPORT"]
    return results


def run_evaluate(values: dict, console: Console) -> dict:
    """darts:evaluate: the core's one pipeline on files (core.regions.evaluate_files), as the
    algorithm calls it."""
    from .core.files.atomic import AtomicFiles
    from .core.kernels.checks import parse_sizes, parse_thresholds
    from .core.regions.evaluate_files import EvaluateInputs, EvaluateOutputs, EvaluateSettings, evaluate_files

    inputs = EvaluateInputs(exclusion_source(values["REFERENCE"], "REFERENCE"), values["PROBABILITIES"],
                            values["QUALITY_MASK"], values["EXTENT"], values["INPUT_FOLDER"] or values["TILES"])
    if values["INPUT_FOLDER"] and values["TILES"]:
        raise ValueError("TILES and INPUT_FOLDER are both given: give one")
    outputs = EvaluateOutputs(values["OUTPUT_TABLE"], values["OUTPUT_FALSE_POSITIVES"] or None,
                              values["OUTPUT_MISSED"] or None, values["OUTPUT_REPORT"] or None)
    thresholds = [value for _, value in parse_thresholds(values["THRESHOLDS"] or "", "THRESHOLDS")]
    settings = EvaluateSettings.from_parameters(
        values, device=device_of(values, console), exclude=exclusion_source(values["EXCLUDE"]),
        thresholds=tuple(thresholds), min_object_sizes=tuple(parse_sizes(values["MIN_OBJECT_SIZES"] or "",
                                                                         "MIN_OBJECT_SIZES")),
        min_iou=values["MIN_IOU"], best_by=values["BEST_BY"], year=values["YEAR"])
    exclusion = settings.exclude[0] if settings.exclude else ""
    check_outputs("evaluate", values, [*inputs.paths, exclusion])
    with AtomicFiles([*inputs.paths, exclusion]) as files:
        summary = evaluate_files(inputs, outputs, settings, console.progress, files=files,
                                 tags=run_tags("evaluate", values),
                                 log=console.log)
    best = summary.best
    return {"OUTPUT_TABLE": outputs.table, **{f"OUTPUT_{kind.upper()}": path for kind, path in summary.files.items()
                                              if kind != "table"},
            "BEST_THRESHOLD": best.threshold, "BEST_MIN_OBJECT_SIZE": best.min_object_size,
            "BEST_SCORE": best.scores[settings.best_by], "BEST_SUMMARY": summary.best_line}


def run_erodemask(values: dict, console: Console) -> dict:
    """darts:erodemask: the core's one pipeline on files (core.products.steps_files.erode_mask_files)."""
    from .core.files.atomic import AtomicFiles
    from .core.products.steps_files import ErodeMaskSettings, erode_mask_files

    mask = values["MASK"]
    settings = ErodeMaskSettings(quality_level=values["QUALITY_LEVEL"], size=values["SIZE"],
                                 edge_size=values["EDGE_SIZE"], device=device_of(values, console),
                                 memory_limit_mb=values["MEMORY_LIMIT"] or None,
                                 dask_scheduler=scheduler_address(values))
    check_outputs("erodemask", values, [mask])
    with AtomicFiles([mask]) as files:
        summary = erode_mask_files(mask, values["OUTPUT"], settings, console.progress, files=files,
                                   tags=run_tags("erodemask", values),
                                   log=console.log)
    return {"OUTPUT": summary.output}


def run_binarize(values: dict, console: Console) -> dict:
    """darts:binarize: the core's one pipeline on files (core.products.steps_files.binarize_files)."""
    from .core.files.atomic import AtomicFiles
    from .core.products.steps_files import BinarizeSettings, binarize_files

    probabilities, mask = values["PROBABILITIES"], values["MASK"]
    settings = BinarizeSettings(threshold=values["THRESHOLD"], min_object_size=values["MIN_OBJECT_SIZE"],
                                size_connectivity=int(values["SIZE_CONNECTIVITY"]), device=device_of(values, console),
                                scale=values["PROBABILITY_SCALE"], memory_limit_mb=values["MEMORY_LIMIT"] or None,
                                dask_scheduler=scheduler_address(values))
    check_outputs("binarize", values, [probabilities, mask])
    with AtomicFiles([probabilities, mask]) as files:
        summary = binarize_files(probabilities, values["OUTPUT"], mask, settings, console.progress, files=files,
                                 tags=run_tags("binarize", values),
                                 log=console.log)
    return {"OUTPUT": summary.output}


def run_qualitymask(values: dict, console: Console) -> dict:
    """darts:qualitymask: the core's one pipeline on files (core.products.steps_files.quality_mask_files)."""
    from .core.files.atomic import AtomicFiles
    from .core.products.steps_files import QualityMaskSettings, quality_mask_files

    raster = values["INPUT"]
    check_outputs("qualitymask", values, [raster])
    with AtomicFiles([raster]) as files:
        summary = quality_mask_files(raster, values["OUTPUT"], QualityMaskSettings(source=values["SOURCE"]),
                                     console.progress, files=files, tags=run_tags("qualitymask", values),
                                     log=console.log)
    return {"OUTPUT": summary.output}


def run_compareyears(values: dict, console: Console) -> dict:
    """darts:compareyears: the core's one pipeline on files (core.regions.compare_years_files), as
    the algorithm calls it, its HTML report included, all files or none."""
    from .core.files.atomic import AtomicFiles
    from .core.regions.compare_years_files import CompareYearsSettings, compare_years_files

    inputs = [exclusion_source(value, "INPUT") for value in values["INPUT"]]
    coverage = [exclusion_source(value, "COVERAGE") for value in values["COVERAGE"] or []]
    settings = CompareYearsSettings(values["YEAR_FIELD"] or "", values["TOLERANCE"], values["OBSERVED_SHARE"])
    read = [path for path, _, _ in inputs + coverage]
    check_outputs("compareyears", values, read)
    with AtomicFiles(read) as files:
        summary = compare_years_files(inputs, values["OUTPUT"], coverage, settings, console.progress,
                                      report=values["OUTPUT_REPORT"] or None, files=files,
                                      tags=run_tags("compareyears", values),
                                      log=console.log)
    return {"OUTPUT": summary.output, **({"OUTPUT_REPORT": summary.report} if summary.report else {})}


RUNS = {"processtiles": run_processtiles, "polygonize": run_polygonize, "exporttile": run_exporttile,
        "prepareexport": run_prepareexport, "evaluate": run_evaluate,
        "erodemask": run_erodemask, "binarize": run_binarize, "qualitymask": run_qualitymask,
        "compareyears": run_compareyears}


def message_of(error: BaseException) -> str:
    """One line for the user (core.files.names.message_of; the error's type where it has no message)."""
    from .core.files.names import message_of as message

    return message(error) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit status (0 success, 1 failure, 2 a bad command line,
    130 canceled by Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        algorithm, values, quiet = parse(argv)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    console = Console(algorithm, quiet)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # e.g. ignored by a parent shell
        signal.signal(signal.SIGINT, signal.default_int_handler)
    log = ConsoleLog(console)  # the core's warnings, one line each
    logging.getLogger(__package__).addHandler(log)
    try:
        results = RUNS[algorithm](values, console)
    except KeyboardInterrupt:
        console.end_line()
        print(f"{algorithm}: {CANCELED}", file=sys.stderr)
        return 130
    except NotImplementedError as error:
        console.end_line()
        print(f"{algorithm}: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 (any failure: one line and a non-zero exit)
        console.end_line()
        print(f"{algorithm}: error: {message_of(error)}", file=sys.stderr)
        return 1
    finally:
        logging.getLogger(__package__).removeHandler(log)
    console.progress(1.0, "Done")
    console.end_line()
    for key, value in results.items():
        print(f"{key}: {value}")
    return 0
