"""The algorithms' parameter widgets: raster inputs that file paths satisfy, and helpers that
give every parameter of one kind the same range, flags and help."""

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
)

from ..definitions import BOUNDARY_MODES, CONNECTIVITIES, DEVICES, PROBABILITY_SCALES, QUALITY_LEVELS
from .paths import files_of, vector_files_of

INT_MAX = 2 ** 31 - 1  # parameterAsInt returns a C int: larger values would wrap (to 0 for 2^31)


def threshold_label(threshold) -> str:
    """core.products.prepare_export_files.threshold_label (imported when called: the core needs numpy)."""
    from ..core.products.prepare_export_files import threshold_label as label

    return label(threshold)


# The postprocessing parameters that prepareexport and processtiles (and evaluate) share: each declared
# once here, with one help text (ParametersMixin.add_postprocessing), and read once into the core's
# settings (ParametersMixin.postprocess_settings: core.products.settings.PostprocessSettings' fields).
POSTPROCESSING_HELP = {
    "THRESHOLD": "Pixels whose probability is above this value (0..1) form objects; DARTS' default is 0.5.",
    "MASK_EROSION_SIZE": "Radius (pixels) of the disk by which the area of the chosen quality level shrinks (DARTS' "
                         "default 10). A tile folder without a quality mask was postprocessed already: its extent is "
                         "used as it is.",
    "EDGE_EROSION_SIZE": "Width (pixels) of the band along the tile's edges that is set invalid. Not set: the mask "
                         "erosion size; 0: no band.",
    "MIN_OBJECT_SIZE": "Objects with fewer pixels are removed (in their tile); an object of exactly this size stays "
                       "(DARTS' default 32).",
    "QUALITY_LEVEL": "Which pixels of the quality mask are valid before the erosion (DARTS' pipeline: low and high "
                     "quality).",
    "BOUNDARY": "remove: drop objects touching the extent's border whole (in a map of many tiles a neighbour tile "
                "then delivers them whole); clip: cut them (upstream)",
    "SIZE_CONNECTIVITY": "8: diagonal neighbours belong to one object when its size is counted; 4 reproduces upstream "
                         "DARTS.",
    "DEVICE": "auto: the GPU when cupy sees one, else the CPU",
    "PROBABILITY_SCALE": "auto: float rasters are 0..1, uint8 rasters are DARTS' percent 0..100 (nodata 255)",
}


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


class VectorFile(QgsProcessingParameterVectorLayer):
    """A vector input that a file path satisfies without loading it as a QGIS layer (as
    RasterFile): the algorithm reads the file itself."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        return (isinstance(value, str) and bool(files_of(value))) or super().checkValueIsAcceptable(value, context)

    def clone(self):
        return as_file_parameter(self)


class VectorFiles(QgsProcessingParameterMultipleLayers):
    """Several vector inputs that file paths satisfy without loading them as QGIS layers: on
    GDAL 3.10 QGIS's OGR provider writes `<file>.gpkg.aux.xml` beside a GeoPackage it loads."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        return bool(vector_files_of(value)) or super().checkValueIsAcceptable(value, context)

    def clone(self):
        return as_file_parameter(self)


def as_file_parameter(parameter):
    """The RasterFile(s) twin of a raster layer parameter, a VectorFile(s)'s copy (others: unchanged)."""
    optional = bool(parameter.flags() & QgsProcessingParameterDefinition.Flag.FlagOptional)
    if type(parameter) in (QgsProcessingParameterRasterLayer, RasterFile):
        copy = RasterFile(parameter.name(), parameter.description(), parameter.defaultValue(), optional)
    elif (type(parameter) in (QgsProcessingParameterMultipleLayers, RasterFiles)
          and parameter.layerType() == QgsProcessing.SourceType.TypeRaster):
        copy = RasterFiles(parameter.name(), parameter.description(), parameter.layerType(), parameter.defaultValue(),
                           optional)
    elif type(parameter) is VectorFiles:
        copy = VectorFiles(parameter.name(), parameter.description(), parameter.layerType(), parameter.defaultValue(),
                           optional)
    elif type(parameter) is VectorFile:
        copy = VectorFile(parameter.name(), parameter.description(), parameter.dataTypes(), parameter.defaultValue(),
                          optional)
    else:
        return parameter
    copy.setFlags(parameter.flags())
    copy.setHelp(parameter.help())
    copy.setMetadata(parameter.metadata())
    return copy


class ParametersMixin:
    """Parameter helpers for a QgsProcessingAlgorithm (with `tr`)."""

    # Tooltips of parameters added without one: {parameter name: text}, set by the algorithm.
    HELP = {}

    def addParameter(self, parameter, createOutput=True):  # noqa: N802
        """Raster inputs become RasterFile(s) parameters (never loaded as layers for a file path);
        a parameter without help gets the algorithm's HELP text as its tooltip."""
        if not parameter.help() and parameter.name() in self.HELP:
            parameter.setHelp(self.tr(self.HELP[parameter.name()]))
        return super().addParameter(as_file_parameter(parameter), createOutput)

    def add_enum(self, name, description, options, default, advanced=False, help_text=""):
        """An enum whose values are the option strings; the dialogs show the options' labels
        (Choices) in their place."""
        parameter = QgsProcessingParameterEnum(name, self.tr(description), options=list(options), defaultValue=default)
        parameter.setUsesStaticStrings(True)
        labels = getattr(options, "labels", None)
        if labels:
            from .widgets import LabelledEnumWrapper

            parameter.setMetadata({"widget_wrapper": {"class": LabelledEnumWrapper,
                                                      "labels": {value: self.tr(text) for value, text in labels.items()}}})
        self.add_parameter_with_help(parameter, advanced, help_text)

    def add_int(self, name, description, default, optional=False, advanced=False, help_text="", minimum=0):
        parameter = QgsProcessingParameterNumber(name, self.tr(description), QgsProcessingParameterNumber.Type.Integer,
                                                 defaultValue=default, optional=optional, minValue=minimum,
                                                 maxValue=INT_MAX)
        self.add_parameter_with_help(parameter, advanced, help_text)

    def add_threshold(self, name="THRESHOLD"):
        parameter = QgsProcessingParameterNumber(name, self.tr("Probability threshold (object where p > threshold)"),
                                                 QgsProcessingParameterNumber.Type.Double, defaultValue=0.5,
                                                 minValue=0.0, maxValue=1.0)
        parameter.setMetadata({"widget_wrapper": {"decimals": 2}})
        self.add_parameter_with_help(parameter, False, POSTPROCESSING_HELP["THRESHOLD"])

    def add_size_connectivity(self):
        self.add_enum("SIZE_CONNECTIVITY", "Connectivity for object sizes", CONNECTIVITIES, "8", advanced=True,
                      help_text=POSTPROCESSING_HELP["SIZE_CONNECTIVITY"])

    def add_device(self):
        self.add_enum("DEVICE", "Device", DEVICES, "auto", advanced=True, help_text=POSTPROCESSING_HELP["DEVICE"])

    def add_scale(self):
        self.add_enum("PROBABILITY_SCALE", "Probability scale", PROBABILITY_SCALES, "auto", advanced=True,
                      help_text=POSTPROCESSING_HELP["PROBABILITY_SCALE"])

    def add_postprocessing(self, *names):
        """The shared postprocessing parameters `names` (POSTPROCESSING_HELP's), in that order."""
        declare = {
            "THRESHOLD": self.add_threshold,
            "MASK_EROSION_SIZE": lambda: self.add_int("MASK_EROSION_SIZE", "Mask erosion size (pixels)", 10,
                                                      help_text=POSTPROCESSING_HELP["MASK_EROSION_SIZE"]),
            "EDGE_EROSION_SIZE": lambda: self.add_int(
                "EDGE_EROSION_SIZE", "Edge erosion size (pixels; Not set = mask erosion size)", None, optional=True,
                help_text=POSTPROCESSING_HELP["EDGE_EROSION_SIZE"]),
            "MIN_OBJECT_SIZE": lambda: self.add_int("MIN_OBJECT_SIZE", "Minimum object size (pixels)", 32,
                                                    help_text=POSTPROCESSING_HELP["MIN_OBJECT_SIZE"]),
            "QUALITY_LEVEL": lambda: self.add_enum("QUALITY_LEVEL", "Quality level", QUALITY_LEVELS, "low_quality",
                                                   help_text=POSTPROCESSING_HELP["QUALITY_LEVEL"]),
            "BOUNDARY": lambda: self.add_enum("BOUNDARY", "Boundary objects", BOUNDARY_MODES, "remove", advanced=True,
                                              help_text=POSTPROCESSING_HELP["BOUNDARY"]),
            "SIZE_CONNECTIVITY": self.add_size_connectivity,
            "DEVICE": self.add_device,
            "PROBABILITY_SCALE": self.add_scale,
        }
        for name in names:
            declare[name]()

    def postprocess_settings(self, parameters, context, feedback, kind, **more):
        """The core settings `kind` (a core.products.settings.PostprocessSettings) from the shared
        postprocessing parameters this algorithm declares (and STATISTICS_SCALE, MAX_EXCLUDED_SHARE),
        each read once here; `more` gives the other fields."""
        from ..core.products.settings import PARAMETERS

        declared = {definition.name() for definition in self.parameterDefinitions()}
        readers = {
            "THRESHOLD": lambda name: self.parameterAsDouble(parameters, name, context),
            "MASK_EROSION_SIZE": lambda name: self.parameterAsInt(parameters, name, context),
            "EDGE_EROSION_SIZE": lambda name: self.optional_int(parameters, name, context),
            "MIN_OBJECT_SIZE": lambda name: self.parameterAsInt(parameters, name, context),
            "QUALITY_LEVEL": lambda name: self.parameterAsEnumString(parameters, name, context),
            "BOUNDARY": lambda name: self.parameterAsEnumString(parameters, name, context),
            "SIZE_CONNECTIVITY": lambda name: self.parameterAsEnumString(parameters, name, context),
            "DEVICE": lambda name: self.device_of(parameters, context, feedback),
            "PROBABILITY_SCALE": lambda name: self.parameterAsEnumString(parameters, name, context) or "auto",
            "STATISTICS_SCALE": lambda name: self.parameterAsEnumString(parameters, name, context) or "fraction",
            "MAX_EXCLUDED_SHARE": lambda name: self.parameterAsDouble(parameters, name, context),
        }
        values = {name: readers[name](name) for name, _ in PARAMETERS.values() if name in declared}
        return kind.from_parameters(values, **more)

    def add_parameter_with_help(self, parameter, advanced, help_text):
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
