"""The command line without QGIS (`python3 -m darts_postprocessing`, from the staged plugin)
and qgis_process on the same inputs write the same files: GeoTIFF pixels, grids, nodata, band
descriptions and tags, GeoPackage layers, features, attributes, geometries and metadata, the
JSON record, the quick looks' pixels and the HTML reports (dates and durations left out). And
both declare the same parameters."""

import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal
from qgis_cli import qgis_process

DATES = ("DARTS_exportdate", "DARTS_processtiles_created")


def plugins_folder(profile):
    return os.path.join(profile["QGIS_CUSTOM_CONFIG_PATH"], "profiles", "default", "python", "plugins")


def run_both(profile, algorithm, parameters, qgis_outputs, cli_outputs):
    """qgis_process run darts:<algorithm> and the command line, each with its own outputs (a
    list value: the parameter repeated, once per item)."""
    def arguments(values):
        return [f"{key}={item}" for key, value in values.items() for item in
                (value if isinstance(value, list) else [value])]

    qgis = qgis_process(profile, "run", f"darts:{algorithm}", "--", *arguments({**parameters, **qgis_outputs}))
    assert qgis.returncode == 0, qgis.stdout + qgis.stderr
    environment = dict(os.environ, PYTHONPATH=plugins_folder(profile))
    ours = subprocess.run([sys.executable, "-m", "darts_postprocessing", algorithm,
                           *arguments({**parameters, **cli_outputs})],
                          env=environment, capture_output=True, text=True, timeout=300)
    assert ours.returncode == 0, ours.stderr
    return ours


def undated(tags):
    return {key: value for key, value in tags.items() if key not in DATES}


# What differs in a report from run to run, masked as "#": processtiles' durations (the cell
# id="seconds" and the last cell of each row of table id="tiles") and the time its record was
# created (the parameter row "created").
SECONDS = re.compile(r'(<td id="seconds">)[^<]*')
TILE_SECONDS = re.compile(r"<td>[0-9.]+</td></tr>")
CREATED = re.compile(r"(<tr><th>created</th><td>)[^<]*")


def unclocked(page):
    page = CREATED.sub(r"\1#", SECONDS.sub(r"\1#", page))
    for table in ('<table id="tiles">', '<table id="settings">'):  # processtiles' and evaluate's last column
        start = page.find(table)
        if start >= 0:
            end = page.index("</table>", start)
            page = page[:start] + TILE_SECONDS.sub("<td>#</td></tr>", page[start:end]) + page[end:]
    return page


def same_raster(a, b):
    first, second = gdal.Open(a), gdal.Open(b)
    assert (first.RasterXSize, first.RasterYSize, first.RasterCount) == \
        (second.RasterXSize, second.RasterYSize, second.RasterCount), b
    assert first.GetGeoTransform() == second.GetGeoTransform() and first.GetProjection() == second.GetProjection()
    if b.endswith(".tif"):
        assert undated(first.GetMetadata()) == undated(second.GetMetadata()), b
    for index in range(1, first.RasterCount + 1):
        band_a, band_b = first.GetRasterBand(index), second.GetRasterBand(index)
        nodata_a, nodata_b = band_a.GetNoDataValue(), band_b.GetNoDataValue()
        assert nodata_a == nodata_b or np.isnan(nodata_a) and np.isnan(nodata_b), b  # NaN: the same nodata
        assert band_a.GetDescription() == band_b.GetDescription(), b
        np.testing.assert_array_equal(band_a.ReadAsArray(), band_b.ReadAsArray(), err_msg=b)


def same_geopackage(a, b):
    first, second = gdal.OpenEx(a, gdal.OF_VECTOR), gdal.OpenEx(b, gdal.OF_VECTOR)
    assert undated(first.GetMetadata()) == undated(second.GetMetadata()), b
    names = [first.GetLayer(i).GetName() for i in range(first.GetLayerCount())]
    assert names == [second.GetLayer(i).GetName() for i in range(second.GetLayerCount())], b
    for name in names:
        layer_a, layer_b = first.GetLayerByName(name), second.GetLayerByName(name)
        assert undated(layer_a.GetMetadata()) == undated(layer_b.GetMetadata()), (b, name)
        assert layer_a.GetGeometryColumn() == layer_b.GetGeometryColumn()
        features_a = [(f.items(), f.GetGeometryRef().ExportToIsoWkb()) for f in layer_a]
        features_b = [(f.items(), f.GetGeometryRef().ExportToIsoWkb()) for f in layer_b]
        assert features_a == features_b, (b, name)


def same_file(a, b):
    if a.endswith((".tif", ".png", ".jpg")):
        same_raster(a, b)
    elif a.endswith(".gpkg"):
        same_geopackage(a, b)
    elif a.endswith(".json"):
        with open(a) as first, open(b) as second:
            assert undated(json.load(first)) == undated(json.load(second)), b
    elif a.endswith(".csv"):  # evaluate's table: every column but the seconds a setting took
        with open(a, encoding="utf-8") as first, open(b, encoding="utf-8") as second:
            rows_a, rows_b = list(csv.DictReader(first)), list(csv.DictReader(second))
        assert [{**row, "seconds": "#"} for row in rows_a] == [{**row, "seconds": "#"} for row in rows_b], b
    elif a.endswith(".html"):
        with open(a, encoding="utf-8") as first, open(b, encoding="utf-8") as second:
            assert unclocked(first.read()) == unclocked(second.read()), b


def same_folders(a, b):
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    for name in names:
        path = os.path.join(a, name)
        if os.path.isdir(path):
            same_folders(path, os.path.join(b, name))
        else:
            same_file(path, os.path.join(b, name))


@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    """A small tile as prepareexport leaves it: probabilities (DARTS' percent), binarized, extent."""
    from darts_postprocessing.core import prepare_export
    from darts_postprocessing.core.files.geotiff import read_band, write_geotiff
    from darts_postprocessing.core.files.grids import grid_of
    from sample_tile import write_sample_tile

    folder = tmp_path_factory.mktemp("cli-tile")
    probabilities, quality = write_sample_tile(str(folder / "input"), size=320, seed=5)
    percent, _ = read_band(probabilities, "p")
    grid = grid_of(probabilities, "p")
    fractions = np.where(percent == 255, np.nan, percent / np.float32(100)).astype(np.float32)
    result = prepare_export({"probabilities": fractions, "quality_data_mask": read_band(quality, "q")[0]}, 0.5, 5, 8, 1)
    paths = {"probabilities": probabilities, "quality": quality}
    for name, key in (("binarized", "binarized_segmentation"), ("extent", "extent")):
        paths[name] = str(folder / f"{name}.tif")
        write_geotiff(paths[name], np.asarray(result[key], np.uint8), grid.geotransform, grid.crs,
                      tags={"DARTS_tileid": "T07WET", "DARTS_exportdate": "2025-01-01 00:00:00+00:00",
                            "DARTS_binarizethreshold": "0.5"})
    return paths


def test_the_command_line_declares_the_algorithms_parameters(provider):
    from darts_postprocessing import cli

    for name, (_, parameters) in cli.ALGORITHMS.items():
        algorithm = provider.algorithm(name)
        definitions = algorithm.parameterDefinitions()
        assert [parameter.name for parameter in parameters] == [d.name() for d in definitions], name
        for parameter, definition in zip(parameters, definitions):
            assert parameter.optional == bool(definition.flags() & definition.Flag.FlagOptional), parameter.name
            default = definition.defaultValue()
            if definition.type() == "crs":
                default = str(default)
            if parameter.kind not in ("raster", "rasters", "layer", "layers", "folder") and not parameter.is_output:
                assert parameter.default == default or (parameter.default in (None, "") and default in (None, "")), \
                    (name, parameter.name, parameter.default, default)
            if definition.type() == "enum":
                assert list(parameter.choices) == definition.options(), parameter.name
            if definition.type() == "number":
                assert (parameter.minimum, parameter.maximum) == (definition.minimum(), definition.maximum()) or \
                    parameter.kind == "integer" and parameter.minimum == definition.minimum(), parameter.name


def test_polygonize_writes_what_qgis_process_writes(profile, tile, tmp_path):
    parameters = {"BINARIZED": tile["binarized"], "PROBABILITIES": tile["probabilities"],
                  "STATISTICS_SCALE": "percent", "POLYGON_LAYOUT": "parts"}
    run_both(profile, "polygonize", parameters, {"OUTPUT": tmp_path / "qgis" / "objects.gpkg"},
             {"OUTPUT": tmp_path / "cli" / "objects.gpkg"})
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.mark.parametrize("options", [{}, {"MEMORY_LIMIT": 1}, {"THRESHOLDS": "0.4,0.6", "STATISTICS_SCALE": "percent"},
                                     {"BOUNDARY": "clip", "SIZE_CONNECTIVITY": "4", "EDGE_EROSION_SIZE": 0}])
def test_prepareexport_writes_what_qgis_process_writes(profile, tile, tmp_path, options):
    """The one core pipeline behind both: the same files in memory, block by block, per threshold."""
    parameters = {"PROBABILITIES": tile["probabilities"], "QUALITY_MASK": tile["quality"], "MASK_EROSION_SIZE": 5,
                  "MIN_OBJECT_SIZE": 8, **options}
    outputs = {name: os.path.join("{}", file) for name, file in (
        ("OUTPUT_BINARIZED", "b.tif"), ("OUTPUT_EXTENT", "e.tif"), ("OUTPUT_PROBABILITIES", "p.tif"),
        ("OUTPUT_POLYGONS", "o.gpkg"), ("OUTPUT_REPORT", "report.html"))}
    ours = run_both(profile, "prepareexport", parameters,
                    {name: path.format(tmp_path / "qgis") for name, path in outputs.items()},
                    {name: path.format(tmp_path / "cli") for name, path in outputs.items()})
    assert ("Processing in blocks" in ours.stderr) == ("MEMORY_LIMIT" in options)
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.mark.parametrize("memory", [None, 1])
def test_exporttile_writes_what_qgis_process_writes(profile, tile, tmp_path, memory):
    parameters = {"PROBABILITIES": tile["probabilities"], "BINARIZED": tile["binarized"], "EXTENT": tile["extent"]}
    if memory:  # block by block in both
        parameters["MEMORY_LIMIT"] = memory
    ours = run_both(profile, "exporttile", parameters, {"OUTPUT_FOLDER": tmp_path / "qgis" / "tile"},
                    {"OUTPUT_FOLDER": tmp_path / "cli" / "tile"})
    assert ("Processing in blocks" in ours.stderr) == bool(memory)
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.fixture(scope="module")
def steps_tile(tmp_path_factory):
    """A tile large enough that MEMORY_LIMIT=1 sends binarize and erodemask block by block
    (640 x 640: 2 x 2 blocks of 512), an SCL band and observation counts (nodata 0) on its grid."""
    from darts_postprocessing.core.files.geotiff import write_geotiff
    from darts_postprocessing.core.files.grids import grid_of
    from sample_tile import write_sample_tile

    folder = tmp_path_factory.mktemp("cli-steps")
    probabilities, quality = write_sample_tile(str(folder / "input"), size=640, seed=7)
    grid = grid_of(probabilities, "p")
    random = np.random.default_rng(7)
    paths = {"probabilities": probabilities, "quality": quality, "scl": str(folder / "scl.tif"),
             "observations": str(folder / "observations.tif")}
    write_geotiff(paths["scl"], random.integers(0, 12, (640, 640), dtype=np.uint8), grid.geotransform, grid.crs,
                  tags={"DARTS_tileid": "T07WET"})
    write_geotiff(paths["observations"], random.integers(0, 9, (640, 640), dtype=np.uint8), grid.geotransform,
                  grid.crs, nodata=0)
    return paths


@pytest.mark.parametrize("memory", [None, 1])
def test_erodemask_writes_what_qgis_process_writes(profile, steps_tile, tmp_path, memory):
    parameters = {"MASK": steps_tile["quality"], "QUALITY_LEVEL": "high_quality", "SIZE": 7, "EDGE_SIZE": 3}
    if memory:  # block by block in both
        parameters["MEMORY_LIMIT"] = memory
    ours = run_both(profile, "erodemask", parameters, {"OUTPUT": tmp_path / "qgis" / "eroded.tif"},
                    {"OUTPUT": tmp_path / "cli" / "eroded.tif"})
    assert ("Processing in blocks" in ours.stderr) == bool(memory)
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.mark.parametrize("memory", [None, 1])
def test_binarize_writes_what_qgis_process_writes(profile, steps_tile, tmp_path, memory):
    parameters = {"PROBABILITIES": steps_tile["probabilities"], "MASK": steps_tile["quality"], "THRESHOLD": 0.45,
                  "MIN_OBJECT_SIZE": 12, "SIZE_CONNECTIVITY": "4"}
    if memory:
        parameters["MEMORY_LIMIT"] = memory
    ours = run_both(profile, "binarize", parameters, {"OUTPUT": tmp_path / "qgis" / "objects.tif"},
                    {"OUTPUT": tmp_path / "cli" / "objects.tif"})
    assert ("Processing in blocks" in ours.stderr) == bool(memory)
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.mark.parametrize("source", ["scl", "observations"])
def test_qualitymask_writes_what_qgis_process_writes(profile, steps_tile, tmp_path, source):
    ours = run_both(profile, "qualitymask", {"INPUT": steps_tile[source], "SOURCE": source},
                    {"OUTPUT": tmp_path / "qgis" / "quality.tif"}, {"OUTPUT": tmp_path / "cli" / "quality.tif"})
    assert "Invalid: " in ours.stderr and "high quality: " in ours.stderr
    same_folders(tmp_path / "qgis", tmp_path / "cli")


def test_processtiles_writes_what_qgis_process_writes(profile, tmp_path):
    from darts_folders import darts_run

    darts_run(tmp_path / "run", years=(2019,))
    parameters = {"INPUT_FOLDER": tmp_path / "run", "THRESHOLD": 0.45, "GROUP_BY": "date", "WORKERS": 1,
                  "STATISTICS_SCALE": "percent", "SIZE_CONNECTIVITY": "4", "TARGET_CRS": "EPSG:3413"}
    outputs = {side: {"OUTPUT": tmp_path / side / "region.gpkg", "OUTPUT_TILES": tmp_path / side / "tiles",
                      "OUTPUT_REPORT": tmp_path / side / "region.html"} for side in ("qgis", "cli")}
    run_both(profile, "processtiles", parameters, outputs["qgis"], outputs["cli"])
    same_folders(tmp_path / "qgis", tmp_path / "cli")


@pytest.mark.parametrize("source", ["raster", "folder"])
def test_evaluate_writes_what_qgis_process_writes(profile, tmp_path, source):
    """One raster with its quality mask, and a folder of DARTS tiles: the same table (but the
    seconds), false positives, missed slumps and report."""
    from darts_folders import darts_region

    run, reference, _ = darts_region(tmp_path)
    if source == "raster":
        tile = next(iter(run["folders"].values()))
        parameters = {"PROBABILITIES": os.path.join(tile, "probabilities.tif"), "MASK_EROSION_SIZE": 3}
    else:
        parameters = {"INPUT_FOLDER": tmp_path / "run", "BOUNDARY": "clip"}
    parameters.update({"REFERENCE": reference, "THRESHOLDS": "0.3,0.5", "MIN_OBJECT_SIZES": "0,32",
                       "BEST_BY": "pixel_f1"})
    outputs = {side: {"OUTPUT_TABLE": tmp_path / side / "scores.csv", "OUTPUT_FALSE_POSITIVES": tmp_path / side / "fp.gpkg",
                      "OUTPUT_MISSED": tmp_path / side / "missed.gpkg", "OUTPUT_REPORT": tmp_path / side / "report.html"}
               for side in ("qgis", "cli")}
    ours = run_both(profile, "evaluate", parameters, outputs["qgis"], outputs["cli"])
    assert "Best setting by pixel_f1" in ours.stderr and "BEST_THRESHOLD: " in ours.stdout
    same_folders(tmp_path / "qgis", tmp_path / "cli")
@pytest.mark.parametrize("case", ["two maps, coverage beside", "one map, coverage given"])
def test_compareyears_writes_what_qgis_process_writes(profile, tmp_path, case):
    """A hand-made pair of years (grown, merged, gone, new or unobserved): the same changes,
    tags and report from both, with several maps and their coverage found beside them, or one
    map and its coverage given."""
    from vectors import features, write_map

    x, y = 600000, 7800000
    slumps = {2020: [(x, y, x + 100, y + 100), (x + 300, y, x + 340, y + 40), (x + 345, y, x + 385, y + 40),
                     (x + 600, y, x + 650, y + 50)],
              2021: [(x, y, x + 100, y + 160), (x + 300, y, x + 385, y + 40), (x + 2000, y, x + 2050, y + 50)]}
    coverage = {2020: [(x - 50, y - 50, x + 1000, y + 500)], 2021: [(x - 50, y - 50, x + 3000, y + 500)]}
    if case.startswith("two"):
        maps = [write_map(tmp_path / f"{year}.gpkg", [(year, box) for box in slumps[year]],
                          coverage=[(year, box) for box in coverage[year]]) + "|layername=slumps" for year in slumps]
        parameters = {"INPUT": maps}
    else:
        region = write_map(tmp_path / "region.gpkg", [(year, box) for year in slumps for box in slumps[year]],
                           coverage=[(year, box) for year in coverage for box in coverage[year]])
        parameters = {"INPUT": f"{region}|layername=slumps", "COVERAGE": f"{region}|layername=slumps_coverage",
                      "TOLERANCE": 0.5, "OBSERVED_SHARE": 0.9}
    run_both(profile, "compareyears", parameters,
             *[{"OUTPUT": tmp_path / side / "changes.gpkg", "OUTPUT_REPORT": tmp_path / side / "changes.html"}
               for side in ("qgis", "cli")])
    same_folders(tmp_path / "qgis", tmp_path / "cli")
    _, found = features(str(tmp_path / "cli" / "changes.gpkg"))
    assert sorted(attributes["change"] for attributes, _ in found) == ["gone", "grown", "stable", "unobserved"]
