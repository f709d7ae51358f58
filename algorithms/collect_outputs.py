"""darts:collectoutputs — the last step of a model: the files its steps wrote to temporary
outputs become the model's outputs, all together or none.

QGIS runs a model's steps one by one, and a step whose output is a model output writes it
when that step finishes; a later step that fails then leaves the earlier outputs behind.
In the shipped model the steps write to QGIS's temporary files instead, and this step copies
them into the model's outputs through the run's AtomicOutputs: a failure in any step, this
one included, leaves no output. Hidden from the toolbox; models and qgis_process use it."""

import os
import shutil

from qgis.core import (
    Qgis,
    QgsProcessing,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import DartsAlgorithm
from .parameters import VectorFile
from .paths import files_of, into_geopackage
from .styles import style_on_load


class CollectOutputsAlgorithm(DartsAlgorithm):
    BINARIZED = "BINARIZED"
    EXTENT = "EXTENT"
    POLYGONS = "POLYGONS"
    OUTPUT_BINARIZED = "OUTPUT_BINARIZED"
    OUTPUT_EXTENT = "OUTPUT_EXTENT"
    OUTPUT_POLYGONS = "OUTPUT_POLYGONS"
    # (input, output, style on load) of each file collected
    FILES = ((BINARIZED, OUTPUT_BINARIZED, "binarized"), (EXTENT, OUTPUT_EXTENT, "extent"),
             (POLYGONS, OUTPUT_POLYGONS, "segments"))
    # Tags in which a step names a file another step of the model wrote: {tag: that file's input}.
    # They then name the temporary file; the copy names the output it became.
    NAMING_TAGS = {"DARTS_binarize_mask": EXTENT, "DARTS_polygonize_binarized": BINARIZED}
    HELP = {
        BINARIZED: "A GeoTIFF, e.g. the temporary output of 'Binarize probabilities' in a model.",
        EXTENT: "A GeoTIFF, e.g. the temporary output of 'Erode quality mask' in a model.",
        POLYGONS: "A GeoPackage with one layer, e.g. the temporary output of 'Polygonize objects' in a model.",
        OUTPUT_BINARIZED: "A copy of the binarized objects, written together with the other outputs.",
        OUTPUT_EXTENT: "A copy of the extent, written together with the other outputs.",
        OUTPUT_POLYGONS: "A copy of the polygons (layer named after the file), written together with the other "
                         "outputs.",
    }

    def name(self):
        return "collectoutputs"

    def displayName(self):  # noqa: N802
        return self.tr("Collect model outputs")

    def flags(self):
        return super().flags() | Qgis.ProcessingAlgorithmFlag.HideFromToolbox

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>The last step of a model: copies the binarized objects, the extent and the polygons that the "
            "model's steps wrote to temporary outputs into the model's outputs, all together or none. A model whose "
            "outputs all come from this step leaves no output when any step fails or is canceled.</p>"
            "<p>The inputs are never changed. The polygons' layer is named after its output file, and tags in which a "
            "step named another step's temporary file name the output it became.</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.BINARIZED, self.tr("Binarized objects (0/1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.EXTENT, self.tr("Extent")))
        self.addParameter(VectorFile(self.POLYGONS, self.tr("Object polygons"),
                                     [QgsProcessing.SourceType.TypeVectorPolygon]))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_BINARIZED,
                                                                  self.tr("Binarized segmentation")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_EXTENT, self.tr("Extent")))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT_POLYGONS, self.tr("Object polygons"), QgsProcessing.SourceType.TypeVectorPolygon))

    def polygons_path(self, parameters, context):
        """The file of the polygons input, without loading it (see VectorFile)."""
        value = parameters.get(self.POLYGONS)
        if isinstance(value, str) and files_of(value):
            return value
        layer = self.parameterAsVectorLayer(parameters, self.POLYGONS, context)
        if layer is None:
            raise ValueError(f"{self.POLYGONS}: no vector layer given")
        return layer.source().split("|")[0]

    def input_paths(self, parameters, context):
        return super().input_paths(parameters, context) + [self.polygons_path(parameters, context)]

    def execute(self, parameters, context, feedback, outputs):
        sources = {self.BINARIZED: self.raster_path(parameters, self.BINARIZED, context),
                   self.EXTENT: self.raster_path(parameters, self.EXTENT, context),
                   self.POLYGONS: self.polygons_path(parameters, context)}
        targets = {name: self.parameterAsOutputLayer(parameters, output, context) for name, output, _ in self.FILES}

        def renamed(file):
            """Point the tags of `file` that name a temporary input at its output."""
            from ..core.files.tags import read_tags, write_metadata

            tags = read_tags(file)
            fixes = {tag: os.path.basename(targets[name]) for tag, name in self.NAMING_TAGS.items()
                     if tags.get(tag) == os.path.basename(sources[name]) != os.path.basename(targets[name])}
            if fixes:
                write_metadata(file, fixes)

        for index, (name, _, style) in enumerate(self.FILES):
            self.check_canceled(feedback)
            if name == self.POLYGONS:
                into_geopackage(targets[name], outputs,
                                lambda file, layer, name=name: renamed(copy_geopackage(sources[name], file, layer)))
            else:
                renamed(copy_geotiff(sources[name], outputs.reserve(targets[name]), name))
            style_on_load(context, targets[name], style)
            feedback.setProgress(100 * (index + 1) / len(self.FILES))
        return {output: targets[name] for name, output, _ in self.FILES}


def copy_geotiff(source, copy, what):
    """Copy the GeoTIFF `source` byte for byte to `copy` (returned)."""
    from ..core.files.gdal import open_read_only

    try:
        with open_read_only(source, "raster") as dataset:
            driver = dataset.GetDriver().ShortName
    except RuntimeError as error:
        raise ValueError(f"{what}: cannot read {source}: {error}") from None
    if driver != "GTiff":
        raise ValueError(f"{what}: {os.path.basename(source)} is not a GeoTIFF ({driver})")
    shutil.copyfile(source, copy)
    return copy


def copy_geopackage(source, copy, layer):
    """Copy the one-layer GeoPackage `source` byte for byte to `copy` (returned) and name its
    layer `layer`."""
    from ..core.files.gdal import gdal_writing, open_read_only, osgeo

    gdal, _, _ = osgeo()
    try:
        with open_read_only(source, "vector") as dataset:
            found = dataset.GetDriver().ShortName, dataset.GetLayerCount()
    except RuntimeError as error:
        raise ValueError(f"POLYGONS: cannot read {source}: {error}") from None
    if found != ("GPKG", 1):
        raise ValueError(f"POLYGONS: {os.path.basename(source)} must be a GeoPackage with one layer")
    shutil.copyfile(source, copy)
    with gdal_writing(copy):
        dataset = gdal.OpenEx(copy, gdal.OF_VECTOR | gdal.OF_UPDATE)
        try:
            if dataset.GetLayer(0).GetName() != layer:
                dataset.GetLayer(0).Rename(layer)
        finally:
            dataset = None
    return copy
