"""darts:compareyears through processing.run and qgis_process on real GeoPackages: classes,
coverage found beside the map, styled output, report, errors that write nothing."""

import json
import os

import pytest
from osgeo import ogr, osr
from qgis import processing
from qgis.core import QgsProcessingException
from qgis_cli import qgis_process
from reading import open_read_only

ogr.UseExceptions()
X, Y = 600000, 7800000


def box(x0, y0, x1, y1):
    return ogr.CreateGeometryFromWkt(f"POLYGON (({X + x0} {Y + y0}, {X + x1} {Y + y0}, {X + x1} {Y + y1}, "
                                     f"{X + x0} {Y + y1}, {X + x0} {Y + y0}))")


def write_map(path, features, coverage=None, layer="slumps"):
    """processtiles' layout: a layer of (year, box) and '<layer>_coverage' of (year, box), UTM 6N."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32606)
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    for name, items in ((layer, features), (f"{layer}_coverage", coverage)):
        if items is None:
            continue
        target = dataset.CreateLayer(name, srs, ogr.wkbPolygon)
        target.CreateField(ogr.FieldDefn("year", ogr.OFTInteger))
        for year, corners in items:
            feature = ogr.Feature(target.GetLayerDefn())
            feature.SetField("year", year)
            feature.SetGeometry(box(*corners))
            target.CreateFeature(feature)
    dataset = None
    return str(path)


FEATURES = [(2020, (0, 0, 100, 100)), (2021, (0, 0, 100, 160)),  # grown
            (2020, (300, 0, 340, 40)), (2020, (345, 0, 385, 40)), (2021, (300, 0, 385, 40)),  # merged, stable-ish
            (2020, (600, 0, 650, 50)),  # gone (2021 observed it)
            (2021, (2000, 0, 2050, 50))]  # unobserved in 2020
COVERAGE = [(2020, (-50, -50, 1000, 500)), (2021, (-50, -50, 3000, 500))]


@pytest.fixture()
def region(tmp_path):
    return write_map(tmp_path / "region.gpkg", FEATURES, COVERAGE)


def changes_of(path):
    with open_read_only(path, "vector") as dataset:
        return sorted((f.GetField("change"), f.GetField("match"), f.GetField("ids_from"), f.GetField("ids_to"))
                      for f in dataset.GetLayer(0))


EXPECTED = [("gone", "none", "6", ""), ("grown", "one", "1", "2"), ("stable", "merge", "3,4", "5"),
            ("unobserved", "none", "", "7")]


def test_compareyears_classes_with_the_coverage_beside_the_map(provider, region, tmp_path):
    out = tmp_path / "out"
    results = processing.run("darts:compareyears", {"INPUT": [f"{region}|layername=slumps"],
                                                    "OUTPUT": str(out / "changes.gpkg"),
                                                    "OUTPUT_REPORT": str(out / "changes.html")})
    assert changes_of(results["OUTPUT"]) == EXPECTED
    page = open(results["OUTPUT_REPORT"], encoding="utf-8").read()
    assert '<td id="count-2020-2021-grown">1</td>' in page and '<td id="count-2020-2021-unobserved">1</td>' in page
    with open_read_only(results["OUTPUT"], "vector") as dataset:
        grown = next(f for f in dataset.GetLayer(0) if f.GetField("change") == "grown")
        assert (grown.GetField("area_from_m2"), grown.GetField("area_to_m2"), grown.GetField("change_m2_per_year")) \
            == (10000, 16000, 6000)


def test_without_coverage_every_place_is_observed(provider, tmp_path):
    path = write_map(tmp_path / "plain.gpkg", FEATURES)
    results = processing.run("darts:compareyears", {"INPUT": [path], "OUTPUT": str(tmp_path / "changes.gpkg")})
    assert [row[0] for row in changes_of(results["OUTPUT"])] == ["gone", "grown", "new", "stable"]


def test_errors_write_nothing(provider, tmp_path):
    one_year = write_map(tmp_path / "one.gpkg", [(2020, (0, 0, 10, 10))])
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match="only the year 2020; at least two years are needed"):
        processing.run("darts:compareyears", {"INPUT": [one_year], "OUTPUT": str(out / "c.gpkg"),
                                              "OUTPUT_REPORT": str(out / "c.html")})
    with pytest.raises(QgsProcessingException, match="no field 'jahr' for the year"):
        processing.run("darts:compareyears", {"INPUT": [one_year], "YEAR_FIELD": "jahr", "OUTPUT": str(out / "c.gpkg")})
    assert not out.exists() or not os.listdir(out)


def test_qgis_process_runs_compareyears(profile, region, tmp_path):
    run = qgis_process(profile, "run", "darts:compareyears", "--json", "--", f"INPUT={region}|layername=slumps",
                       "TOLERANCE=0.1", f"OUTPUT={tmp_path / 'changes.gpkg'}", f"OUTPUT_REPORT={tmp_path / 'c.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert changes_of(results["OUTPUT"]) == EXPECTED



def test_qgis_process_leaves_the_maps_as_they_were(profile, tmp_path):
    """compareyears through qgis_process on a map with dataset metadata (as processtiles writes
    it): the maps' folder stays byte for byte, no .aux.xml beside them (QGIS's OGR provider
    writes one into a GeoPackage it loads as a layer on GDAL 3.10: maps given as files are
    read by GDAL only)."""
    import hashlib

    from darts_postprocessing.core.files.tags import write_metadata

    folder = tmp_path / "maps"
    folder.mkdir()
    region = write_map(folder / "region.gpkg", FEATURES, COVERAGE)
    write_metadata(region, {"DARTS_processtiles_tiles": "4"})

    def digests():
        return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}

    before = digests()
    run = qgis_process(profile, "run", "darts:compareyears", "--", f"INPUT={region}|layername=slumps",
                       f"COVERAGE={region}|layername=slumps_coverage", f"OUTPUT={tmp_path / 'changes.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert digests() == before
    assert changes_of(str(tmp_path / "changes.gpkg")) == EXPECTED


def test_change_layer_style_has_a_class_per_change(provider, region, tmp_path):
    from darts_postprocessing.algorithms.styles import STYLES
    from qgis.core import QgsVectorLayer

    results = processing.run("darts:compareyears", {"INPUT": [f"{region}|layername=slumps"],
                                                    "OUTPUT": str(tmp_path / "changes.gpkg")})
    layer = QgsVectorLayer(results["OUTPUT"], "changes", "ogr")
    STYLES["changes"](layer)
    categories = layer.renderer().categories()
    assert [c.value() for c in categories] == ["new", "grown", "stable", "shrunk", "gone", "unobserved"]
    assert all(c.label() for c in categories) and layer.renderer().classAttribute() == "change"


def test_two_years_of_a_darts_run_through_processtiles(provider, tmp_path):
    """A DARTS run of two years (tests/darts_folders.py: in 2024 every slump is 20 m larger and one
    is new) merged per year by processtiles, then compared: all grown, one new, none gone."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from darts_folders import darts_run

    run = darts_run(tmp_path / "run")
    merged = processing.run("darts:processtiles", {"INPUT_FOLDER": str(tmp_path / "run"), "WORKERS": 1,
                                                   "OUTPUT": str(tmp_path / "region.gpkg")})
    results = processing.run("darts:compareyears", {"INPUT": [f"{merged['OUTPUT']}|layername=region"],
                                                    "OUTPUT": str(tmp_path / "changes.gpkg")})
    with open_read_only(results["OUTPUT"], "vector") as dataset:
        changes = [(f.GetField("change"), f.GetField("match")) for f in dataset.GetLayer(0)]
    assert changes.count(("new", "none")) == 1
    assert changes.count(("grown", "one")) == len(run["slumps"][2019]) == len(changes) - 1
