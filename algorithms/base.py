"""What every DARTS algorithm shares: parameter widgets, dependency check, progress and
cancel, and turning bad input into a clear Processing error."""

import os

from qgis.core import (
    QgsDataSourceUri,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread
from qgis.PyQt.QtGui import QIcon

from ..dependencies import install_hint, missing_modules
from .styles import style_on_load

INT_MAX = 2 ** 31 - 1  # parameterAsInt returns a C int: larger values would wrap (to 0 for 2^31)
# What the algorithms write, by destination type (the provider offers only these): a file of
# another extension would be written in this format under a misleading name.
OUTPUT_FORMATS = {"rasterDestination": ("GeoTIFF", (".tif", ".tiff")), "vectorDestination": ("GeoPackage", (".gpkg",))}
ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")
QUALITY_LEVELS = ["none", "low_quality", "high_quality"]
DEVICES = ["auto", "cpu", "cuda"]
BOUNDARIES = ["remove", "clip"]
CONNECTIVITIES = ["8", "4"]
SCALES = ["auto", "fraction", "percent"]


CANCELED = "Canceled: no output was written."


class Canceled(Exception):
    """The user pressed cancel: stop, write nothing."""


class RasterFile(QgsProcessingParameterRasterLayer):
    """A raster input that a file path satisfies without loading it as a QGIS layer: loading
    computes statistics, which GDAL writes into a .vrt input (or an .aux.xml beside it) when
    the layer is closed. Our readers open the file read-only and report problems themselves."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        return (isinstance(value, str) and bool(files_of(value))) or super().checkValueIsAcceptable(value, context)

    def clone(self):
        return as_file_parameter(self)


class RasterFiles(QgsProcessingParameterMultipleLayers):
    """Several raster inputs, satisfied by file paths as RasterFile is."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        return bool(files_of(value)) or super().checkValueIsAcceptable(value, context)

    def clone(self):
        return as_file_parameter(self)


def as_file_parameter(parameter):
    """The RasterFile(s) twin of a raster layer parameter (others: unchanged)."""
    optional = bool(parameter.flags() & QgsProcessingParameterDefinition.Flag.FlagOptional)
    if type(parameter) in (QgsProcessingParameterRasterLayer, RasterFile):
        copy = RasterFile(parameter.name(), parameter.description(), parameter.defaultValue(), optional)
    elif (type(parameter) in (QgsProcessingParameterMultipleLayers, RasterFiles)
          and parameter.layerType() == QgsProcessing.SourceType.TypeRaster):
        copy = RasterFiles(parameter.name(), parameter.description(), parameter.layerType(), parameter.defaultValue(),
                           optional)
    else:
        return parameter
    copy.setFlags(parameter.flags())
    copy.setHelp(parameter.help())
    return copy


def files_of(value):
    """The paths in a parameter value that is one file path or a list of them, else []."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if values and all(isinstance(item, str) and os.path.isfile(item) for item in values):
        return list(values)
    return []


def geopackage_layer(path):
    """(file, layer or None) of a vector output: QGIS's 'Save to GeoPackage' form
    ogr:dbname='x.gpkg' table="name" writes the layer `name` into x.gpkg."""
    if not path.startswith("ogr:"):
        return path, None
    uri = QgsDataSourceUri(path[4:])
    return uri.database(), uri.table() or None


def into_geopackage(path, outputs, write):
    """Write the vector output `path` of a run through `write(file, layer)` (its result is
    returned): a new GeoPackage with a layer of the file's name, or for QGIS's 'Save to
    GeoPackage' form into an existing file, a copy of it with that layer replaced or added."""
    from ..core.files import replace_layer
    from ..core.vectorize import layer_name

    target, layer = geopackage_layer(path)
    if layer and os.path.exists(target):
        written = outputs.scratch(target)
        result = write(written, layer)
        replace_layer(target, outputs.reserve(target), written, layer)
        return result
    return write(outputs.reserve(target), layer or layer_name(target))


class DartsAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses define the parameters and `execute`."""

    def tr(self, text):
        return QCoreApplication.translate(type(self).__name__, text)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def group(self):
        return self.tr("Postprocessing")

    def groupId(self):  # noqa: N802
        return "postprocessing"

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802
        return ICON

    # -- parameter helpers -------------------------------------------------------------
    def addParameter(self, parameter, createOutput=True):  # noqa: N802
        """Raster inputs become RasterFile(s) parameters (never loaded as layers for a file path)."""
        return super().addParameter(as_file_parameter(parameter), createOutput)

    def add_enum(self, name, description, options, default, advanced=False, help_text=""):
        parameter = QgsProcessingParameterEnum(name, self.tr(description), options=options, defaultValue=default)
        parameter.setUsesStaticStrings(True)
        self._finish(parameter, advanced, help_text)

    def add_int(self, name, description, default, optional=False, advanced=False, help_text="", minimum=0):
        parameter = QgsProcessingParameterNumber(name, self.tr(description), QgsProcessingParameterNumber.Type.Integer,
                                                 defaultValue=default, optional=optional, minValue=minimum,
                                                 maxValue=INT_MAX)
        self._finish(parameter, advanced, help_text)

    def add_threshold(self, name="THRESHOLD"):
        parameter = QgsProcessingParameterNumber(name, self.tr("Probability threshold (object where p > threshold)"),
                                                 QgsProcessingParameterNumber.Type.Double, defaultValue=0.5,
                                                 minValue=0.0, maxValue=1.0)
        self._finish(parameter, False, "")

    def add_device(self):
        self.add_enum("DEVICE", "Device", DEVICES, "auto", advanced=True,
                      help_text="auto: the GPU when cupy sees one, else the CPU")

    def add_scale(self):
        self.add_enum("PROBABILITY_SCALE", "Probability scale", SCALES, "auto", advanced=True,
                      help_text="auto: float rasters are 0..1, uint8 rasters are DARTS' percent 0..100 (nodata 255)")

    def _finish(self, parameter, advanced, help_text):
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        if help_text:
            parameter.setHelp(self.tr(help_text))
        self.addParameter(parameter)

    def optional_int(self, parameters, name, context):
        """The value of an optional integer parameter, or None when it was left empty."""
        value = parameters.get(name)
        if value is None or value == "":
            return None
        return self.parameterAsInt(parameters, name, context)

    # -- running -----------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        missing = missing_modules()
        if missing:
            raise QgsProcessingException(install_hint(missing))
        from .raster_io import AtomicOutputs

        outputs = AtomicOutputs(self.input_paths(parameters, context))
        try:
            self.check_outputs(parameters, context)
            results = self.execute(parameters, context, feedback, outputs)
            self.check_canceled(feedback)
            outputs.commit()
            return results
        except Canceled:
            # An exception, not an empty result: qgis_process then exits non-zero, a script sees it.
            outputs.discard()
            raise QgsProcessingException(self.tr(CANCELED)) from None
        except (ValueError, TypeError, KeyError, OSError, RuntimeError, MemoryError) as error:
            # bad input, a file that could not be read or written (RuntimeError: GDAL's), a
            # raster too large for memory (MemoryError, cupy's OutOfMemoryError included)
            outputs.discard()
            raise QgsProcessingException(message_of(error)) from None
        except BaseException:
            outputs.discard()
            raise

    def input_paths(self, parameters, context):
        """Files this run reads: outputs must never replace them."""
        paths = []
        for definition in self.parameterDefinitions():
            if definition.type() == "raster":
                paths.append(self.raster_path(parameters, definition.name(), context, required=False) or "")
            elif definition.type() == "multilayer":
                paths += [path for _, path in self.raster_files(parameters, definition.name(), context)]
        return paths

    def output_paths(self, parameters, context):
        """(parameter name, path) of every file the run will write; subclasses add derived files."""
        paths = []
        for definition in self.destinationParameterDefinitions():
            name = definition.name()
            if definition.type() in OUTPUT_FORMATS:
                path = geopackage_layer(self.parameterAsOutputLayer(parameters, name, context))[0]
            else:
                path = self.parameterAsFileOutput(parameters, name, context)
            if path:
                paths.append((name, path))
        return paths

    def check_outputs(self, parameters, context):
        """Before any computing: every output in the format it is written in, in a place that
        can be written, and no two outputs in one file (the second would silently replace the
        first)."""
        from ..core.files import check_writable

        types = {definition.name(): definition.type() for definition in self.destinationParameterDefinitions()}
        seen = {}
        for name, path in self.output_paths(parameters, context):
            if types.get(name) in OUTPUT_FORMATS:
                kind, extensions = OUTPUT_FORMATS[types[name]]
                if not path.lower().endswith(extensions):
                    raise ValueError(f"{name}: written as {kind}, so the file must end in {' or '.join(extensions)} "
                                     f"(got {os.path.basename(path)!r})")
            try:
                check_writable(path, folder=types.get(name) == "folderDestination")
            except OSError as error:
                raise OSError(f"{name}: {error}") from None
            key = os.path.normcase(os.path.realpath(path))
            if key in seen:
                raise ValueError(f"{seen[key]} and {name} are the same file ({path}): choose different files, "
                                 f"or one would overwrite the other")
            seen[key] = name

    @staticmethod
    def check_canceled(feedback):
        """Raise Canceled when the user canceled. qgis_process turns Ctrl-C into a cancel only
        while Qt handles events, which it lets happen once every 2 s of a run: in the main
        thread, pending events are handled here, so Ctrl-C is never ignored (it would let a
        run end with exit code 0 and commit its outputs)."""
        application = QCoreApplication.instance()
        if application is not None and QThread.currentThread() == application.thread():
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        if feedback.isCanceled():
            raise Canceled

    def progress_reporter(self, feedback, start=0.0, span=100.0):
        """A core progress callback that feeds the Processing feedback and honours cancel. The
        text goes to the log once per stage; the percentage to the progress bar."""
        shown = []

        def report(fraction, message):
            self.check_canceled(feedback)
            feedback.setProgress(start + span * fraction)
            if shown != [message]:
                shown[:] = [message]
                feedback.setProgressText(message)

        return report

    def resolve_device(self, parameters, context, feedback):
        """The core device for the DEVICE parameter; 'cuda' without a GPU warns and uses the CPU."""
        device = self.parameterAsEnumString(parameters, "DEVICE", context) or "auto"
        from ..core import gpu_available

        if device == "cuda" and not gpu_available():
            feedback.pushWarning(self.tr("Device 'cuda' was chosen, but no CUDA GPU is usable (is cupy installed?): "
                                         "computing on the CPU."))
            return "cpu"
        return device

    def raster_path(self, parameters, name, context, required=True):
        """The file of a raster input: a path as given, without loading it (see RasterFile)."""
        value = parameters.get(name)
        if isinstance(value, str) and files_of(value):
            return value
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            if required:
                raise ValueError(f"{name}: no raster layer given")
            return None
        return layer.source()

    def raster_files(self, parameters, name, context):
        """(layer name, file) of each raster of a multiple-layer input, file paths not loaded
        (see RasterFile); the name is the file's without extension, as QGIS names a layer."""
        paths = files_of(parameters.get(name))
        if paths:
            return [(os.path.splitext(os.path.basename(path))[0], path) for path in paths]
        return [(layer.name(), layer.source()) for layer in self.parameterAsLayerList(parameters, name, context)]

    def area_note(self, grid, feedback):
        """Warn when the areas (area_m2, the report's) cannot be in m² on this grid; the note or None."""
        note = grid.area_note()
        if note:
            feedback.pushWarning(self.tr(note))
        return note

    def write_polygons(self, path, context, outputs, binary, grid, probabilities, progress, blocks=None):
        """Polygonize `binary` into the GeoPackage `path` (a layer of the file's name, or, for
        ogr:dbname=... table=..., that layer of that file, its other layers kept), committed
        with the run's other outputs and styled on load; returns the number of features.
        A lazy (dask) `binary` is polygonized block by block by `blocks` (blocks.run_blocks)."""
        from ..core import polygonize

        def polygonize_into(file, name):
            if blocks is None:
                return polygonize(binary, grid.geotransform, grid.crs, file, layer=name, probabilities=probabilities,
                                  progress=progress)
            from ..core.chunked_polygons import polygonize_lazy  # into the run's own temporary file

            return blocks(lambda lock: [polygonize_lazy(binary, grid.geotransform, grid.crs, file, name, probabilities,
                                                        lock)])[0]

        count = into_geopackage(path, outputs, polygonize_into)
        style_on_load(context, path, "segments")
        return count

    def helpUrl(self):  # noqa: N802
        return "https://github.com/darts-postprocessing/qgis-darts-postprocessing#readme"


def message_of(error):
    """One line for the user: a failed file operation names the user's file, never the hidden
    temporary one it went to."""
    from ..core.files import final_name

    if isinstance(error, MemoryError):
        detail = " ".join(str(error).split()) or type(error).__name__
        return f"Not enough memory for this raster: {detail} (set MEMORY_LIMIT lower to process it block by block)"
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror}: {final_name(error.filename)}"
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split())
