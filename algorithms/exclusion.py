"""The EXCLUDE input (a water or glacier mask, ...): one optional parameter that takes a polygon
layer or a raster, and its translation into what core.files.exclusion reads (a file, a layer name,
a feature filter). The rule itself (which objects go) is the core's."""

import os

from qgis.core import (
    QgsMapLayerType,
    QgsProcessing,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProviderRegistry,
    QgsVectorFileWriter,
)

EXCLUDE = "EXCLUDE"
HELP = ("Polygons (any vector format, any CRS: burnt onto the probabilities' grid, a pixel counting when its centre "
        "lies inside) or a raster on exactly the probabilities' grid (non-zero pixels; nodata does not count). "
        "Objects with any pixel in it are removed whole; with boundary = clip, only their pixels in it are, and the "
        "rest is then size-filtered. For a layer of a multi-layer file use path|layername=NAME.")


class ExclusionLayer(QgsProcessingParameterMapLayer):
    """A polygon layer or a raster; a file path (path|layername=x too) is used as a file, never
    loaded as a QGIS layer (see base.RasterFile for why)."""

    def __init__(self, name, description, optional=True, rasters=True):
        self.rasters = rasters
        super().__init__(name, description, None, optional,
                         [QgsProcessing.SourceType.TypeVectorPolygon]
                         + ([QgsProcessing.SourceType.TypeRaster] if rasters else []))

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        # Any text passes here: a missing file or layer, or a raster where polygons are needed,
        # then gets its own message from exclusion_input and the core, not QGIS's generic one.
        return (isinstance(value, str) and bool(value.strip())) or super().checkValueIsAcceptable(value, context)

    def clone(self):
        copy = ExclusionLayer(self.name(), self.description(),
                              bool(self.flags() & QgsProcessingParameterDefinition.Flag.FlagOptional), self.rasters)
        copy.setFlags(self.flags())
        copy.setHelp(self.help())
        return copy


MAX_EXCLUDED_SHARE = "MAX_EXCLUDED_SHARE"
SHARE_HELP = ("Objects with more than this share of their pixels in the exclusion mask are removed (0, the default: "
              "any pixel; DARTS' earlier pipeline removed a polygon with more than 20 % in water: 0.2). Others are "
              "kept whole. Only with boundary = remove.")


def add_exclusion(algorithm, description="Exclusion mask (e.g. water; polygons or raster)", help_text=HELP,
                  rasters=True, share=True):
    parameter = ExclusionLayer(EXCLUDE, algorithm.tr(description), rasters=rasters)
    algorithm.add_parameter_with_help(parameter, False, help_text)
    if share:
        add_excluded_share(algorithm)


def add_excluded_share(algorithm):
    """The share of an object that may lie in the exclusion mask before it is removed."""
    parameter = QgsProcessingParameterNumber(MAX_EXCLUDED_SHARE, algorithm.tr("Largest excluded share of an object"),
                                             QgsProcessingParameterNumber.Type.Double, defaultValue=0.0, minValue=0.0,
                                             maxValue=0.99)
    algorithm.add_parameter_with_help(parameter, False, SHARE_HELP)


def file_source(value):
    """(file, layer name or None, filter or None) of a parameter value that is a file path,
    optionally with QGIS's |layername=/|layerid=/|subset= suffixes; None otherwise."""
    if not isinstance(value, str) or not value.strip():
        return None
    if not os.path.isfile(value.split("|")[0]):
        return None
    return decode_source(value)


def decode_source(source):
    """(file, layer name or None, filter or None) of an OGR/GDAL source string of QGIS."""
    parts = QgsProviderRegistry.instance().decodeUri("ogr", source)
    path, layer, where = parts.get("path") or source, parts.get("layerName") or None, parts.get("subset") or None
    if layer is None and parts.get("layerId") not in (None, ""):
        from ..core.files.gdal import open_read_only

        with open_read_only(path, "vector") as dataset:
            layer = dataset.GetLayer(int(parts["layerId"])).GetName()
    return path, layer, where


def missing_file(value):
    """The path of a parameter value that names a file which does not exist (a path with a
    folder in it), else None: such a value is never looked up as a layer (GDAL would print
    its own errors first)."""
    if not isinstance(value, str):
        return None
    path = value.split("|")[0].strip()
    return path if os.sep in path and not os.path.exists(path) else None


def exclusion_input(algorithm, parameters, context, scratch, name=EXCLUDE):
    """(file, layer, filter) of EXCLUDE (or of the layer parameter `name`), or None when it is
    not given. A vector layer that is no file (a scratch layer, a database) is first written to
    the GeoPackage `scratch()` returns, for GDAL to read."""
    value = parameters.get(name)
    if value is None or value == "":
        return None
    source = file_source(value)
    if source:
        return source
    if missing_file(value):
        raise ValueError(f"{name}: {missing_file(value)!r} does not exist")
    layer = algorithm.parameterAsLayer(parameters, name, context)
    if layer is None:
        path = value.split("|")[0] if isinstance(value, str) else value
        raise ValueError(f"{name}: {path!r} is neither a file (it does not exist) nor a layer of the project")
    if layer.type() == QgsMapLayerType.RasterLayer:
        if layer.providerType() != "gdal":
            raise ValueError(f"{name}: the raster '{layer.name()}' is not a file (provider {layer.providerType()}): "
                             f"save it as a GeoTIFF first")
        return layer.source(), None, None
    return vector_source(layer, context, scratch, name)


def vector_source(layer, context, scratch, name):
    """(file, layer, filter) GDAL reads for the vector `layer`: its own file, or for a layer that
    is no file (a scratch layer, a database) a copy in the GeoPackage `scratch()` returns."""
    if layer.providerType() == "ogr" and not layer.subsetString().strip().upper().startswith("SELECT"):
        return decode_source(layer.source())
    path = scratch()
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "polygons"
    error, message, _, _ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, path, context.transformContext(), options)
    if error != QgsVectorFileWriter.WriterError.NoError:
        raise OSError(f"{name}: cannot copy the layer '{layer.name()}' for reading: {message}")
    return path, "polygons", None


def exclusion_file(algorithm, parameters, context, name=EXCLUDE):
    """The file EXCLUDE (or the layer parameter `name`) reads ('' when none or not a file), never
    to be overwritten by an output."""
    value = parameters.get(name)
    if value is None or value == "":
        return ""
    source = file_source(value)
    if source:
        return source[0]
    if missing_file(value):
        return ""
    layer = algorithm.parameterAsLayer(parameters, name, context)
    return decode_source(layer.source())[0] if layer is not None else ""


def warn_without_crs(algorithm, exclusion, feedback) -> None:
    """A polygon layer without a CRS is read in each raster's CRS: say so, it may be wrong."""
    from ..core.files.exclusion import polygons_without_crs

    path, layer, _ = exclusion
    if polygons_without_crs(path, layer):
        feedback.pushWarning(algorithm.tr("{}: the polygons have no CRS; they are taken to be in the raster's CRS")
                             .format(EXCLUDE))
