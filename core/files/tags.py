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

import contextlib
import datetime
import os

from .gdal import check_written, gdal_writing, open_read_only, osgeo

PREFIX = "DARTS_"
# Upstream's tag names for the postprocessing settings (the pipeline's names for them).
UPSTREAM_KEYS = {"bin_threshold": "binarizethreshold", "threshold": "binarizethreshold",
                 "mask_erosion_size": "maskerosion", "edge_erosion_size": "edgeerosion",
                 "min_object_size": "mmu", "quality_level": "qualitymask"}




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


def inherited_tags(found) -> dict:
    """The tags a run inherits from its inputs' tags `found` (one dict per input): where they
    disagree the most recently exported input wins (by DARTS_exportdate; on a tie the later one)."""
    inherited = {}
    for tags in sorted(found, key=lambda tags: tags.get(PREFIX + "exportdate", "")):
        inherited.update(tags)
    return inherited


def read_tags(path: str) -> dict:
    """The `DARTS_*` tags of a raster or GeoPackage (dataset level, and for a GeoPackage also
    its first layer's; for a JPEG those in its comment, see comment_of); {} for a file without
    them or that GDAL cannot open."""
    found = {}
    with contextlib.suppress(RuntimeError), open_read_only(path) as dataset:
        found = dict(dataset.GetMetadata() or {})
        found.update(comment_tags(found.get("COMMENT")))
        if dataset.GetLayerCount():
            found.update(dataset.GetLayer(0).GetMetadata() or {})
    return {key: value for key, value in found.items() if key.startswith(PREFIX)}


def comment_of(tags: dict) -> str:
    """The `DARTS_*` tags as a JSON object for a JPEG's comment marker: GDAL's JPEG driver
    keeps no other metadata in the file (it would write an .aux.xml beside it)."""
    import json

    return json.dumps({key: str(value) for key, value in tags.items() if key.startswith(PREFIX)}, sort_keys=True)


def comment_tags(comment) -> dict:
    """The `DARTS_*` tags of a comment written by comment_of ({} for any other comment)."""
    import json

    try:
        tags = json.loads(comment) if comment else {}
    except ValueError:
        return {}
    return {key: value for key, value in tags.items() if key.startswith(PREFIX)} if isinstance(tags, dict) else {}


def earlier_postprocessing(tags: dict) -> str | None:
    """What `tags` (read_tags) say was done to a raster already: DARTS' export (and this
    plugin's outputs) tag the erosion and edge band they applied; None when nothing says so.
    Postprocessing such a raster again erodes its valid area a second time."""
    applied = {name: tags.get(PREFIX + key) for name, key in (("erosion", "maskerosion"), ("edge band", "edgeerosion"))
               if tags.get(PREFIX + key) not in (None, "", "None")}
    if not applied:
        return None
    return ", ".join(f"{name} {value}" for name, value in applied.items())


def postprocessed_again(path: str) -> str | None:
    """The warning for a run that postprocesses the raster `path` when its tags say it was
    postprocessed already (earlier_postprocessing); None when they do not."""
    applied = earlier_postprocessing(read_tags(path))
    if not applied:
        return None
    return (f"{os.path.basename(path)} was postprocessed already ({applied}, from its DARTS_* tags): its edge band "
            f"and erosion were applied once; this run applies them again (QUALITY_LEVEL=none applies neither).")


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
            raster = not dataset.GetLayerCount()
            dataset.FlushCache()
        finally:
            dataset = None  # closes the file
    if raster:  # a GeoTIFF's new directory may be lost silently (files.check_written)
        check_written(path)


# darts_inference.json: the keys DARTS' pipeline writes there (in its order) and the JSON type
# of each value as DARTS gives it (its pipeline's settings: numbers as numbers, the model
# files as a list of names). `DARTS_exportdate` follows them.
INFERENCE_KEYS = (("tileid", "text"), ("modelfiles", "list"), ("tpiouter", "integer"), ("tpiinner", "integer"),
                  ("patchsize", "integer"), ("overlap", "integer"), ("reflection", "integer"),
                  ("binarizethreshold", "number"), ("maskerosion", "integer"), ("edgeerosion", "integer"),
                  ("mmu", "integer"), ("qualitymask", "level"))


def inference_record(tags: dict) -> dict:
    """The darts_inference.json of a tile folder from its files' tags: DARTS' keys in DARTS'
    order with JSON-typed values (null where the tags do not say, e.g. the model's settings of
    probabilities not made by DARTS), `DARTS_exportdate`, then the plugin's further `DARTS_*`
    tags as the strings they are. Raster tags hold text only, so each value is read back
    into DARTS' type; a tag that is not of its type is an error naming it."""
    record = {PREFIX + key: _typed(PREFIX + key, tags.get(PREFIX + key), kind) for key, kind in INFERENCE_KEYS}
    record[PREFIX + "exportdate"] = tags.get(PREFIX + "exportdate") or export_date()
    record.update({key: str(value) for key, value in tags.items() if key.startswith(PREFIX) and key not in record})
    return record


def _typed(key: str, value, kind: str):
    """A tag's text as the JSON value DARTS writes for `key` (None for no tag or "None")."""
    if value is None or str(value).strip() in ("", "None"):
        return None
    text = str(value).strip()
    try:
        if kind == "list":  # DARTS' tag is str() of a Python list of file names
            return _names(text)
        if kind in ("integer", "level"):
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind == "number":
            return float(text)
    except (ValueError, SyntaxError):
        if kind != "level":  # a quality level is a number or DARTS' name of one
            raise ValueError(f"the inputs' tag {key}={text!r} is not {'an' if kind == 'integer' else 'a'} "
                             f"{kind} as DARTS writes it") from None
    return text


def _names(text: str) -> list:
    """The names in DARTS' `['a.ckpt', 'b.ckpt']` (or one bare name)."""
    import ast

    if not text.startswith(("[", "(")):
        return [text]
    names = ast.literal_eval(text)  # ValueError or SyntaxError when it is not a literal
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise ValueError
    return list(names)


def write_inference_json(path: str, record: dict) -> None:
    """Write `record` as DARTS writes darts_inference.json (UTF-8, indented by 2)."""
    import json

    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
