"""How a file was made, written into it: dataset tags and band descriptions of GeoTIFFs, and
dataset and layer metadata of GeoPackages (GDAL metadata, shown by `gdalinfo`, `ogrinfo`
and QGIS's layer properties).

Upstream DARTS' export writes the pipeline's settings as `DARTS_*` raster tags
(`DARTS_tileid`, `DARTS_binarizethreshold`, `DARTS_maskerosion`, `DARTS_edgeerosion`,
`DARTS_mmu`, `DARTS_qualitymask`, `DARTS_exportdate`, ...) and a band description from the
layer's `long_name`. The same keys are used here for the same settings, so DARTS' tools
find them; other settings of a step go under `DARTS_<step>_<name>`. Tags read from a
step's inputs are carried on, so a tile folder still says how its objects were postprocessed.
"""

from __future__ import annotations

import datetime

from .files import gdal_writing, osgeo

PREFIX = "DARTS_"
# Upstream's tag names for the postprocessing settings (the pipeline's names for them).
UPSTREAM_KEYS = {"bin_threshold": "binarizethreshold", "threshold": "binarizethreshold",
                 "mask_erosion_size": "maskerosion", "edge_erosion_size": "edgeerosion",
                 "min_object_size": "mmu", "quality_level": "qualitymask"}
# Upstream's long_name of each tile layer: its band description (and a `long_name` tag).
LONG_NAMES = {"probabilities": "Probabilities", "binarized": "Binarized Segmentation",
              "extent": "Extent of the segmentation", "quality": "Quality Data Mask"}


def export_date() -> str:
    """Now, as upstream writes `DARTS_exportdate` (str of an aware UTC datetime)."""
    return str(datetime.datetime.now(datetime.timezone.utc))


def describe_run(step: str, settings: dict, inherited: dict | None = None, tile_id: str | None = None) -> dict:
    """The tags of a file written by `step` (e.g. "prepareexport") with `settings` ({name:
    value}; None, e.g. an empty optional parameter, is written "None" as upstream does): the `DARTS_*` tags
    `inherited` from its inputs (but their export date), this run's settings, `DARTS_tileid` (the inherited one unless
    `tile_id` is given) and `DARTS_exportdate`. All values are strings."""
    tags = {key: str(value) for key, value in (inherited or {}).items()
            if key.startswith(PREFIX) and key != PREFIX + "exportdate"}
    for name, value in settings.items():
        key = UPSTREAM_KEYS.get(name.lower(), f"{step}_{name.lower()}")
        tags[PREFIX + key] = str(value)  # GDAL drops empty values
    if tile_id:
        tags[PREFIX + "tileid"] = str(tile_id)
    tags[PREFIX + "exportdate"] = export_date()
    return tags


def read_tags(path: str) -> dict:
    """The `DARTS_*` tags of a raster or GeoPackage (dataset level, and for a GeoPackage also
    its first layer's); {} for a file without them or that GDAL cannot open."""
    gdal, _, _ = osgeo()
    try:
        dataset = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_VECTOR | gdal.OF_READONLY)
    except RuntimeError:
        return {}
    found = dict(dataset.GetMetadata() or {})
    if dataset.GetLayerCount():
        found.update(dataset.GetLayer(0).GetMetadata() or {})
    return {key: value for key, value in found.items() if key.startswith(PREFIX)}


def earlier_postprocessing(tags: dict) -> str | None:
    """What `tags` (read_tags) say was done to a raster already: DARTS' export (and this
    plugin's outputs) tag the erosion and edge band they applied; None when nothing says so.
    Postprocessing such a raster again erodes its valid area a second time."""
    applied = {name: tags.get(PREFIX + key) for name, key in (("erosion", "maskerosion"), ("edge band", "edgeerosion"))
               if tags.get(PREFIX + key) not in (None, "", "None")}
    if not applied:
        return None
    return ", ".join(f"{name} {value}" for name, value in applied.items())


def apply_metadata(target, tags: dict | None, description: str | None = None) -> None:
    """Set `tags` (and the band description and its `long_name` tag) on an open GDAL dataset
    or OGR layer, keeping what it has."""
    tags = dict(tags or {})
    if description:
        tags["long_name"] = description
    if tags:
        target.SetMetadata({**(target.GetMetadata() or {}), **{key: str(value) for key, value in tags.items()}})
    if description and hasattr(target, "RasterCount"):
        for index in range(target.RasterCount):
            target.GetRasterBand(index + 1).SetDescription(description)


def write_metadata(path: str, tags: dict | None, description: str | None = None, layer: str | None = None) -> None:
    """Add `tags` to a finished GeoTIFF (dataset tags; `description`: every band's description
    and a `long_name` tag) or GeoPackage (the dataset's and each layer's metadata, or only
    `layer`'s: the other layers and the file's own metadata are then left alone)."""
    gdal, _, _ = osgeo()
    with gdal_writing(path):
        dataset = gdal.OpenEx(path, gdal.OF_UPDATE | gdal.OF_RASTER | gdal.OF_VECTOR)
        try:
            if dataset.GetLayerCount():
                layers = [dataset.GetLayerByName(layer)] if layer else [dataset.GetLayer(i)
                                                                         for i in range(dataset.GetLayerCount())]
                for target in layers:
                    apply_metadata(target, tags)
                if not layer:
                    apply_metadata(dataset, tags)
            else:
                apply_metadata(dataset, tags, description)
            dataset.FlushCache()
        finally:
            dataset = None  # closes the file
