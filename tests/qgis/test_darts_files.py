"""The files of darts:exporttile are DARTS' own (statistics scale and types, schema, GeoParquet
twins or a logged skip), every file says how it was made, and polygonize/prepareexport offer
DARTS' statistics and layout as options: through processing.run on real files."""

import json
import os

import numpy as np
import pytest
import reference
from osgeo import gdal, ogr
from qgis import processing
from rasters import read
from reading import open_read_only
from reading import tags as dataset_tags
from sample_tile import write_tif
from feedback import Log
from scipy import ndimage
from vectors import features

gdal.UseExceptions()
UPSTREAM_SETTINGS = {"DARTS_binarizethreshold": "0.5", "DARTS_mmu": "20", "DARTS_maskerosion": "3",
                     "DARTS_qualitymask": "low_quality"}
SCHEMA = {"Region_ID": "Integer64", "min": "Integer64", "max": "Integer64", "mean": "Real", "median": "Real",
          "std": "Real", "npixel": "Integer64", "area_m2": "Real"}


@pytest.fixture()
def blocks_sample(tmp_path):
    """A tile large enough that MEMORY_LIMIT=1 (MB) takes the block-wise path, 2 x 2 blocks."""
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=600, seed=2)
    return {"probabilities": probabilities, "quality": quality}


def tag_darts_input(path):
    """Give a probabilities raster the tags DARTS' export writes into it."""
    dataset = gdal.Open(path, gdal.GA_Update)
    dataset.SetMetadata({"DARTS_tileid": "S2B_T06WVS_20240701", "DARTS_modelfiles": "['model.ckpt']",
                         "DARTS_exportdate": "2024-07-02 10:00:00+00:00", "DARTS_binarizethreshold": "0.9"})
    dataset = None


def prepare(sample, tmp_path, feedback=None, **extra):
    return processing.run("darts:prepareexport", {
        "PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"], "THRESHOLD": 0.5,
        "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 20, "QUALITY_LEVEL": "low_quality",
        "OUTPUT_BINARIZED": str(tmp_path / "binarized.tif"), "OUTPUT_EXTENT": str(tmp_path / "extent.tif"), **extra},
        feedback=feedback)


def export(sample, prepared, folder, feedback=None, **extra):
    return processing.run("darts:exporttile", {"PROBABILITIES": sample["probabilities"],
                                               "BINARIZED": prepared["OUTPUT_BINARIZED"],
                                               "EXTENT": prepared["OUTPUT_EXTENT"], "OUTPUT_FOLDER": str(folder),
                                               **extra}, feedback=feedback)


def schema(path):
    with open_read_only(path, "vector") as dataset:  # must outlive its layer
        layer = dataset.GetLayer(0)
        definition = layer.GetLayerDefn()
        fields = {definition.GetFieldDefn(i).GetName(): definition.GetFieldDefn(i).GetTypeName()
                  for i in range(definition.GetFieldCount())}
        return fields, layer.GetGeometryColumn(), ogr.GeometryTypeToName(layer.GetGeomType())


def percent_of(path):
    """The exported percent values as float, NaN for nodata 255 (what DARTS' statistics see)."""
    percent = read(path)
    return np.where(percent == 255, np.nan, percent).astype(np.float64)


def assert_percent_statistics(rows, table):
    for index, (attributes, _) in enumerate(rows):
        assert attributes["npixel"] == table["npixel"][index]
        assert attributes["min"] == table["min"][index] and attributes["max"] == table["max"][index]
        assert isinstance(attributes["min"], int) and isinstance(attributes["max"], int)
        for statistic in ("mean", "median", "std"):
            assert attributes[statistic] == pytest.approx(table[statistic][index], rel=1e-9, abs=1e-9), statistic


@pytest.mark.parametrize("memory_limit", [None, 1])
def test_exporttile_statistics_and_schema_are_darts(provider, blocks_sample, tmp_path, memory_limit):
    sample = blocks_sample
    prepared = prepare(sample, tmp_path)
    extra = {"MEMORY_LIMIT": memory_limit} if memory_limit else {}
    log = Log()
    results = export(sample, prepared, tmp_path / "tile", log, **extra)
    assert log.blockwise() == bool(memory_limit)
    percent = percent_of(results["OUTPUT_PROBABILITIES"])
    for output, raster in (("OUTPUT_SEGMENTS", results["OUTPUT_BINARIZED"]),
                           ("OUTPUT_EXTENT_POLYGONS", results["OUTPUT_EXTENT"])):
        fields, geometry_column, geometry_type = schema(results[output])
        assert fields == SCHEMA and geometry_column == "geom" and geometry_type == "Multi Polygon"
        labels, table = reference.object_table(read(raster), percent)
        _, rows = features(results[output])
        assert len(rows) == labels.max() > 0
        assert_percent_statistics(sorted(rows, key=lambda row: row[0]["Region_ID"]), table)
    # A user's "mean" > 60 finds the objects DARTS would find.
    labels, table = reference.object_table(read(results["OUTPUT_BINARIZED"]), percent)
    with open_read_only(results["OUTPUT_SEGMENTS"], "vector") as dataset:
        layer = dataset.GetLayer(0)
        layer.SetAttributeFilter('"mean" > 60 AND "max" <= 100')
        assert layer.GetFeatureCount() == int((table["mean"] > 60).sum()) > 0


def test_exporttile_statistics_of_float_probabilities_are_the_truncated_percent(provider, tmp_path):
    from sample_tile import sample_arrays

    probabilities, quality = sample_arrays(120, 3)
    paths = {name: str(tmp_path / f"{name}.tif") for name in ("p", "b", "e")}
    write_tif(paths["p"], probabilities, nodata=float("nan"))
    extent = (quality > 0).astype(np.uint8)
    write_tif(paths["e"], extent)
    binarized = ((np.nan_to_num(probabilities) > 0.6) & (extent == 1)).astype(np.uint8)
    write_tif(paths["b"], binarized)
    results = processing.run("darts:exporttile", {"PROBABILITIES": paths["p"], "BINARIZED": paths["b"],
                                                  "EXTENT": paths["e"], "OUTPUT_FOLDER": str(tmp_path / "tile")})
    truncated = (np.nan_to_num(probabilities) * np.float32(100)).astype(np.uint8).astype(np.float64)
    labels, table = reference.object_table(binarized, np.where(np.isnan(probabilities), np.nan, truncated))
    _, rows = features(results["OUTPUT_SEGMENTS"])
    assert len(rows) == labels.max() > 0
    assert_percent_statistics(rows, table)


def test_exporttile_parts_layout_is_upstreams(provider, sample, tmp_path):
    prepared = prepare(sample, tmp_path)
    binarized = read(prepared["OUTPUT_BINARIZED"])
    binarized[5:9, 5:9] = binarized[9, 9] = binarized[10, 10:13] = 1  # an object of three 4-connected parts
    binarized[4, :] = binarized[11, :] = binarized[:, 4] = binarized[:, 13] = 0
    prepared["OUTPUT_BINARIZED"] = str(tmp_path / "hand.tif")
    write_tif(prepared["OUTPUT_BINARIZED"], binarized)
    results = export(sample, prepared, tmp_path / "tile", POLYGON_LAYOUT="parts")
    fields, geometry_column, geometry_type = schema(results["OUTPUT_SEGMENTS"])
    assert fields == SCHEMA and geometry_column == "geom" and geometry_type == "Polygon"
    labels, table = reference.object_table(binarized, percent_of(results["OUTPUT_PROBABILITIES"]))
    _, rows = features(results["OUTPUT_SEGMENTS"])
    by_object = {}
    for attributes, geometry in rows:
        assert geometry.GetGeometryName() == "POLYGON" and geometry.IsValid()
        by_object.setdefault(attributes["Region_ID"], []).append((attributes, geometry))
    assert sorted(by_object) == list(range(1, labels.max() + 1))
    for region, parts in by_object.items():
        _, count = ndimage.label(labels == region)  # scipy's default: 4-connected parts
        assert len(parts) == count
        assert sum(geometry.GetArea() for _, geometry in parts) == table["npixel"][region - 1] * 100.0
        assert all(attributes == parts[0][0] for attributes, _ in parts)  # the object's statistics on every part
    assert len(by_object[labels[5, 5]]) == 3 and by_object[labels[5, 5]][0][0]["npixel"] == 20
    # The default: one MultiPolygon feature per object.
    objects = export(sample, prepared, tmp_path / "tile2")["OUTPUT_SEGMENTS"]
    assert schema(objects)[2] == "Multi Polygon" and len(features(objects)[1]) == labels.max()


def test_exporttile_geoparquet_twins_or_a_logged_skip(provider, sample, tmp_path):
    from darts_postprocessing.core.files.geoparquet import geoparquet_support

    prepared = prepare(sample, tmp_path)
    log = Log()
    results = export(sample, prepared, tmp_path / "tile", log)
    writer, why = geoparquet_support()
    names = ["prediction_segments.parquet", "prediction_extent.parquet"]
    present = [name for name in names if os.path.exists(tmp_path / "tile" / name)]
    if writer is None:  # Debian's GDAL 3.6 and QGIS Python: neither Parquet driver nor pyarrow
        assert present == [] and "OUTPUT_SEGMENTS_PARQUET" not in results
        (line,) = [line for line in log.lines if "Skipped" in line]
        assert "prediction_segments.parquet, prediction_extent.parquet" in line and why in line
        assert "no Parquet driver" in line and "pyarrow" in line
    else:
        assert present == names and results["OUTPUT_SEGMENTS_PARQUET"].endswith(names[0])
        assert any("GeoParquet written" in line for line in log.lines)


def test_every_file_says_how_it_was_made(provider, blocks_sample, tmp_path):
    sample = blocks_sample
    tag_darts_input(sample["probabilities"])
    prepared = prepare(sample, tmp_path, OUTPUT_POLYGONS=str(tmp_path / "objects.gpkg"),
                       OUTPUT_PROBABILITIES=str(tmp_path / "masked.tif"))

    def tags_of(path, description=None):
        with open_read_only(path) as dataset:
            tags = dataset.GetMetadata()
            if description:
                assert dataset.GetRasterBand(1).GetDescription() == tags["long_name"] == description
            if dataset.GetLayerCount():
                assert dataset.GetLayer(0).GetMetadata() == tags
        return tags

    for output, description in (("OUTPUT_BINARIZED", "Binarized Segmentation"),
                                ("OUTPUT_EXTENT", "Extent of the segmentation"),
                                ("OUTPUT_PROBABILITIES", "Probabilities"), ("OUTPUT_POLYGONS", None)):
        tags = tags_of(prepared[output], description)
        assert UPSTREAM_SETTINGS.items() <= tags.items(), output  # this run's threshold, not the input's 0.9
        assert tags["DARTS_tileid"] == "S2B_T06WVS_20240701" and tags["DARTS_modelfiles"] == "['model.ckpt']"
        assert tags["DARTS_exportdate"] != "2024-07-02 10:00:00+00:00"
        assert tags["DARTS_prepareexport_boundary"] == "remove" and tags["DARTS_edgeerosion"] == "3"  # as used
        assert tags["DARTS_prepareexport_probabilities"] == "probabilities.tif"
        assert tags["DARTS_postprocessing"].startswith("darts:prepareexport (DARTS Postprocessing for QGIS ")
        assert "DARTS_prepareexport_device" not in tags

    for memory_limit, folder in ((None, "tile"), (1, "tile-blocks")):
        log = Log()
        results = export(sample, prepared, tmp_path / folder, log,
                         **({"MEMORY_LIMIT": memory_limit} if memory_limit else {}))
        assert log.blockwise() == bool(memory_limit)
        for output, description in (("OUTPUT_PROBABILITIES", "Probabilities"),
                                    ("OUTPUT_BINARIZED", "Binarized Segmentation"),
                                    ("OUTPUT_EXTENT", "Extent of the segmentation"), ("OUTPUT_SEGMENTS", None),
                                    ("OUTPUT_EXTENT_POLYGONS", None), ("OUTPUT_QUICKLOOK", None)):
            tags = tags_of(results[output], description)
            # prepareexport's settings travel with the binarized raster; the tile id with the input's tags.
            assert UPSTREAM_SETTINGS.items() <= tags.items() and tags["DARTS_tileid"] == "S2B_T06WVS_20240701"
            assert tags["DARTS_exporttile_polygon_layout"] == "objects"
            assert tags["DARTS_postprocessing"].startswith("darts:exporttile ")
        # The JPEG's tags in its comment, darts_inference.json's as DARTS' record (numbers as numbers).
        from darts_postprocessing.core.files.tags import read_tags

        assert read_tags(results["OUTPUT_THUMBNAIL"]) == {key: value for key, value in tags.items()
                                                           if key.startswith("DARTS_")}
        with open(results["OUTPUT_METADATA"], encoding="utf-8") as handle:
            record = json.load(handle)
        assert (record["DARTS_binarizethreshold"], record["DARTS_mmu"], record["DARTS_maskerosion"]) == (0.5, 20, 3)
        assert record["DARTS_tileid"] == "S2B_T06WVS_20240701" and record["DARTS_modelfiles"] == ["model.ckpt"]
        assert record["DARTS_exportdate"] == tags["DARTS_exportdate"] and record["DARTS_patchsize"] is None
        assert not [name for name in os.listdir(tmp_path / folder) if name.endswith(".aux.xml")]


def test_step_outputs_carry_their_settings(provider, sample, tmp_path):
    eroded = processing.run("darts:erodemask", {"MASK": sample["quality"], "QUALITY_LEVEL": "high_quality", "SIZE": 2,
                                                "OUTPUT": str(tmp_path / "extent.tif")})["OUTPUT"]
    binarized = processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "MASK": eroded,
                                                  "THRESHOLD": 0.4, "MIN_OBJECT_SIZE": 7,
                                                  "OUTPUT": str(tmp_path / "b.tif")})["OUTPUT"]
    polygons = processing.run("darts:polygonize", {"BINARIZED": binarized, "OUTPUT": str(tmp_path / "p.gpkg")})["OUTPUT"]
    extent_tags = dataset_tags(eroded)
    assert extent_tags["DARTS_qualitymask"] == "high_quality" and extent_tags["DARTS_erodemask_size"] == "2"
    assert extent_tags["long_name"] == "Extent of the segmentation"
    binarized_tags = dataset_tags(binarized)
    assert binarized_tags["DARTS_binarizethreshold"] == "0.4" and binarized_tags["DARTS_mmu"] == "7"
    assert binarized_tags["DARTS_qualitymask"] == "high_quality"  # from the mask it was given
    assert binarized_tags["long_name"] == "Binarized Segmentation"
    polygon_tags = dataset_tags(polygons)
    assert polygon_tags["DARTS_binarizethreshold"] == "0.4" and polygon_tags["DARTS_polygonize_statistics_scale"] == "fraction"


@pytest.mark.parametrize("memory_limit", [None, 1])
def test_polygonize_and_prepareexport_offer_darts_percent_statistics(provider, blocks_sample, tmp_path, memory_limit):
    """On DARTS' percent input the statistics are of its own values (53 and 59 included, which
    k / 100 in float32 would turn into 52 and 58)."""
    sample = blocks_sample
    extra = {"MEMORY_LIMIT": memory_limit} if memory_limit else {}
    logs = [Log(), Log()]
    prepared = prepare(sample, tmp_path, logs[0], OUTPUT_POLYGONS=str(tmp_path / "objects.gpkg"),
                       STATISTICS_SCALE="percent", **extra)
    polygons = processing.run("darts:polygonize", {
        "BINARIZED": prepared["OUTPUT_BINARIZED"], "PROBABILITIES": sample["probabilities"],
        "STATISTICS_SCALE": "percent", "OUTPUT": str(tmp_path / "slumps.gpkg"), **extra}, feedback=logs[1])["OUTPUT"]
    assert [log.blockwise() for log in logs] == [bool(memory_limit)] * 2
    raw = read(sample["probabilities"])
    assert {53, 59} <= set(np.unique(raw[read(prepared["OUTPUT_BINARIZED"]) == 1]).tolist())
    labels, table = reference.object_table(read(prepared["OUTPUT_BINARIZED"]), np.where(raw == 255, np.nan, raw))
    for path in (polygons, prepared["OUTPUT_POLYGONS"]):
        fields, _, _ = schema(path)
        assert fields["min"] == fields["max"] == fields["Region_ID"] == fields["npixel"] == "Integer64"
        _, rows = features(path)
        assert len(rows) == labels.max() > 0
        assert_percent_statistics(sorted(rows, key=lambda row: row[0]["Region_ID"]), table)
    fractions = processing.run("darts:polygonize", {
        "BINARIZED": prepared["OUTPUT_BINARIZED"], "PROBABILITIES": sample["probabilities"],
        "OUTPUT": str(tmp_path / "fractions.gpkg")})["OUTPUT"]
    fields, geometry_column, _ = schema(fractions)
    assert fields["min"] == "Real" and geometry_column == "geometry"  # the default keeps 0..1
    assert all(0 <= attributes["max"] <= 1 for attributes, _ in features(fractions)[1])


def test_statistics_scale_choices_are_the_cores():
    from darts_postprocessing.algorithms.polygon_options import STATISTICS_SCALES
    from darts_postprocessing.core.files.layers import STATISTICS_SCALES as CORE

    assert list(STATISTICS_SCALES) == list(CORE)  # one list now (definitions.py), a tuple


def test_settings_left_at_their_defaults_are_tagged_with_their_values(profile, sample, tmp_path):
    """qgis_process (and scripts) leave defaults out of the parameters: the tags must still say
    what the run used, and the edge band the one actually used (the mask erosion size)."""
    from qgis_cli import qgis_process

    run = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={sample['probabilities']}",
                       f"QUALITY_MASK={sample['quality']}", f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}",
                       f"OUTPUT_EXTENT={tmp_path / 'e.tif'}")
    assert run.returncode == 0, run.stdout + run.stderr
    tags = dataset_tags(tmp_path / "b.tif")
    assert (tags["DARTS_binarizethreshold"], tags["DARTS_maskerosion"], tags["DARTS_edgeerosion"], tags["DARTS_mmu"],
            tags["DARTS_qualitymask"]) == ("0.5", "10", "10", "32", "low_quality")
