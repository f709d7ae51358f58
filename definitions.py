"""The plugin's words, each list once: the choices a user makes (with the words the dialogs show
for them), what DARTS names its files, bands and nodata, the default CRS and the progress type.

No numpy and no QGIS here (QuickOSM's `definitions` habit): the core, the command line and the
algorithms all import it, and the toolbox can show the algorithms without loading the core.
"""

import os
from collections.abc import Callable

# progress(fraction 0..1, message); it may raise to cancel.
Progress = Callable[[float, str], None]


class Choices(tuple):
    """The values of a choice (what the core, qgis_process and models take), in the order the
    dialogs list them, with the words the dialogs show for them in `labels`."""

    def __new__(cls, *pairs):
        choices = super().__new__(cls, (value for value, _ in pairs))
        choices.labels = dict(pairs)
        return choices


QUALITY_LEVELS = Choices(("none", "All pixels (quality ignored)"), ("low_quality", "Low and high quality (1, 2)"),
                         ("high_quality", "High quality only (2)"))  # a level's value is its index: 0, 1, 2
DEVICES = Choices(("auto", "Automatic (GPU when available)"), ("cpu", "CPU"), ("cuda", "CUDA GPU"))
BOUNDARY_MODES = Choices(("remove", "Remove touching objects whole"), ("clip", "Clip objects at the extent (upstream)"))
CONNECTIVITIES = Choices(("8", "8 neighbours (diagonals connect)"), ("4", "4 neighbours (upstream)"))
# How probabilities are given: detected from the data type, floats 0..1, or DARTS' uint8 percent.
PROBABILITY_SCALES = Choices(("auto", "Automatic (from the data type)"), ("fraction", "Fraction 0..1"),
                             ("percent", "Percent 0..100 (DARTS uint8)"))
STATISTICS_SCALES = Choices(("fraction", "Fraction 0..1 of the probabilities"),
                            ("percent", "Percent 0..100 (as DARTS' export)"))
# A tile's objects: binarized again from its probabilities with the run's settings, or its binarized.tif.
BINARIZATIONS = Choices(("recompute", "From the probabilities, with these settings"),
                        ("as_exported", "The exported binarized.tif as it is"))
# The features of a polygon layer: one per 8-connected object, or one per 4-connected part (upstream).
POLYGON_LAYOUTS = Choices(("objects", "One feature per object (MultiPolygon)"),
                          ("parts", "One feature per part (Polygon, upstream)"))
GROUPINGS = Choices(("year", "Per year (DARTS' yearly products)"), ("date", "Per date"), ("none", "All tiles together"))

# What a quality mask is made from (core.kernels.quality: DARTS' mapping of each to 0/1/2).
QUALITY_SOURCES = Choices(("scl", "Sentinel-2 scene classification (SCL)"), ("udm2", "Planet UDM2"),
                          ("observations", "Observation counts"))

# The scores darts:evaluate can pick its best setting by (core.regions.evaluate computes them).
SCORES = Choices(("object_f1", "Object F1"), ("object_precision", "Object precision"),
                 ("object_recall", "Object recall"), ("found_share", "Share of reference slumps found at all"),
                 ("pixel_iou", "Pixel IoU"), ("pixel_f1", "Pixel F1"), ("pixel_precision", "Pixel precision"),
                 ("pixel_recall", "Pixel recall"))

PERCENT_NODATA = 255  # DARTS' exported probabilities.tif: uint8 percent 0..100, nodata 255

# NSIDC Sea Ice Polar Stereographic North: the CRS of ArcticDEM and of many pan-Arctic
# permafrost products; one projected CRS for every tile north of 60°N.
DEFAULT_TARGET_CRS = "EPSG:3413"

# The files of a DARTS tile folder, by kind, as DARTS' exporter names them; extent.tif and
# quicklook.png are the plugin's own (DARTS writes the extent as polygons only).
TILE_FILES = {
    "probabilities": "probabilities.tif",
    "binarized": "binarized.tif",
    "extent": "extent.tif",
    "segments": "prediction_segments.gpkg",
    "extent_polygons": "prediction_extent.gpkg",
    "thumbnail": "thumbnail.jpg",
    "inference": "darts_inference.json",
    "quicklook": "quicklook.png",
}
QUALITY_FILE = "quality_data_mask.tif"  # DARTS' input tiles: the quality mask beside the probabilities
# GeoParquet twins of the GeoPackages (kind: (the GeoPackage's kind, file name)), where they can be written.
PARQUET_FILES = {"segments_parquet": ("segments", "prediction_segments.parquet"),
                 "extent_parquet": ("extent_polygons", "prediction_extent.parquet")}
# The files DARTS writes per ensemble subset (model), `{}` its name; their kinds are
# "<kind>-<subset>" in the mappings of export_tile and tile_files.
SUBSET_FILES = {"probabilities": "probabilities-{}.tif", "binarized": "binarized-{}.tif",
                "segments": "prediction_segments-{}.gpkg"}
LAYERS = {"segments": "prediction_segments", "extent_polygons": "prediction_extent"}
# Upstream's long_name of each tile layer: its band description (and a `long_name` tag).
LONG_NAMES = {"probabilities": "Probabilities", "binarized": "Binarized Segmentation",
              "extent": "Extent of the segmentation", "quality": "Quality Data Mask"}

ICON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "icon.svg")
