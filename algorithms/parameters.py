"""The algorithms' parameter widgets: raster inputs that file paths satisfy, and helpers that
give every parameter of one kind the same range, flags and help."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .paths import files_of

INT_MAX = 2 ** 31 - 1  # parameterAsInt returns a C int: larger values would wrap (to 0 for 2^31)
QUALITY_LEVELS = ["none", "low_quality", "high_quality"]
DEVICES = ["auto", "cpu", "cuda"]
BOUNDARIES = ["remove", "clip"]
CONNECTIVITIES = ["8", "4"]
SCALES = ["auto", "fraction", "percent"]


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
    copy.setMetadata(parameter.metadata())
    return copy


class ParametersMixin:
    """Parameter helpers for a QgsProcessingAlgorithm (with `tr`)."""

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
