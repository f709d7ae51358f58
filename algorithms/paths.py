"""Which files a run reads and writes: raster inputs as file paths (never loaded as layers),
and the output checks made before any computing (format, writable place, no two outputs in
one file)."""

import os

from qgis.core import QgsDataSourceUri

# What the algorithms write, by destination type (the provider offers only these): a file of
# another extension would be written in this format under a misleading name.
OUTPUT_FORMATS = {"rasterDestination": ("GeoTIFF", (".tif", ".tiff")), "vectorDestination": ("GeoPackage", (".gpkg",))}


def files_of(value):
    """The paths in a parameter value that is one file path or a list of them, else []."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if values and all(isinstance(item, str) and os.path.isfile(item) for item in values):
        return list(values)
    return []


def vector_files_of(value):
    """The values of a parameter that is one vector file or a list of them, each a path with
    perhaps QGIS's |layername=/|layerid=/|subset= suffixes; else []."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if values and all(isinstance(item, str) and os.path.isfile(item.split("|")[0]) for item in values):
        return list(values)
    return []


def geopackage_layer(path):
    """(file, layer or None) of a vector output: QGIS's 'Save to GeoPackage' form
    ogr:dbname='x.gpkg' table="name" writes the layer `name` into x.gpkg."""
    if not path.startswith("ogr:"):
        return path, None
    uri = QgsDataSourceUri(path[4:])
    return uri.database(), uri.table() or None


def into_geopackage(path, outputs, write, companions=lambda layer: []):
    """Write the vector output `path` of a run through `write(file, layer)` (its result is
    returned): a new GeoPackage with a layer of the file's name, or for QGIS's 'Save to
    GeoPackage' form into an existing file, a copy of it with that layer (and the layers
    `companions(layer)` names, which `write` adds beside it) replaced or added
    (core.files.atomic.into_geopackage)."""
    from ..core.files.atomic import into_geopackage as write_into

    target, layer = geopackage_layer(path)
    return write_into(target, layer, outputs, write, companions)


class PathsMixin:
    """The files of a run, for a QgsProcessingAlgorithm."""

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
        """(layer name, file) of each raster (or vector file, given with QGIS's |layername=
        suffix: VectorFiles) of a multiple-layer input, file paths not loaded (see RasterFile);
        the name is the file's without extension, as QGIS names a layer."""
        paths = [value.split("|")[0] for value in vector_files_of(parameters.get(name))]  # vectors: |layername=
        if paths:
            return [(os.path.splitext(os.path.basename(path))[0], path) for path in paths]
        return [(layer.name(), layer.source()) for layer in self.parameterAsLayerList(parameters, name, context)]

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
        can be written, no two outputs in one file (the second would silently replace the
        first), no output that is an input, and a GeoPackage to write a layer into readable."""
        from ..core.files.atomic import check_geopackage_to_write_into
        from ..core.files.atomic import check_outputs as check

        types = {definition.name(): definition.type() for definition in self.destinationParameterDefinitions()}
        for definition in self.destinationParameterDefinitions():
            if definition.type() == "vectorDestination":
                target, layer = geopackage_layer(self.parameterAsOutputLayer(parameters, definition.name(), context))
                if layer and os.path.exists(target):
                    check_geopackage_to_write_into(target, layer)

        def in_its_format(name, path):
            if types.get(name) in OUTPUT_FORMATS:
                kind, extensions = OUTPUT_FORMATS[types[name]]
                if not path.lower().endswith(extensions):
                    raise ValueError(f"{name}: written as {kind}, so the file must end in {' or '.join(extensions)} "
                                     f"(got {os.path.basename(path)!r})")

        check([(name, path, types.get(name) == "folderDestination") for name, path in self.output_paths(parameters,
                                                                                                           context)],
              self.input_paths(parameters, context), first=in_its_format)
