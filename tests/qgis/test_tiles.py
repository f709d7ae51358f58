"""darts:processtiles in a real QGIS: processing.run, qgis_process (worker processes, a dask
cluster), a model that chains it, a broken tile, cancel; on the region of scripts/sample_region.py."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from models import processtiles_then_extract
from osgeo import ogr
from qgis import processing
from qgis.core import (
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsVectorLayer,
)
from qgis_cli import qgis_process
from reading import open_read_only

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import sample_region as scene  # noqa: E402

ogr.UseExceptions()
# slump -> (tile it comes from, n_tiles): see tests/test_core_tiles.py
EXPECTED = {"overlap": ("tile_A", 2), "a_edge": ("tile_B", 1), "a_only": ("tile_A", 1), "b_cloud": ("tile_A", 1),
            "bc_overlap": ("tile_B", 2), "c_only": ("tile_C", 1)}


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("region")
    return {**scene.region(str(folder / "tiles")), "inputs": str(folder / "tiles")}


def slumps_found(path, slumps, layer=None):
    """{slump name: (tile_id, n_tiles)} of the merged map, checking there are no overlaps."""
    with open_read_only(path, "vector") as dataset:
        features = [(f.items(), f.GetGeometryRef().Clone()) for f in (dataset.GetLayerByName(layer) if layer
                                                                       else dataset.GetLayer(0))]
    found = {}
    for attributes, geometry in features:
        names = [n for n, (x, y, _) in slumps.items() if geometry.Contains(ogr.CreateGeometryFromWkt(f"POINT ({x} {y})"))]
        assert len(names) == 1
        found[names[0]] = (attributes["tile_id"], attributes["n_tiles"])
    for index, (_, a) in enumerate(features):
        for _, b in features[index + 1:]:
            assert not a.Intersects(b) or a.Intersection(b).GetArea() < 1e-6
    return found


def test_processtiles_through_processing_run(provider, region, tmp_path):
    results = processing.run("darts:processtiles", {
        "INPUT_FOLDER": region["inputs"], "OUTPUT": str(tmp_path / "map.gpkg"), "WORKERS": 2,
        "OUTPUT_TILES": str(tmp_path / "tiles"), "OUTPUT_REPORT": str(tmp_path / "report.html")})
    assert results["FEATURES"] == 6 and results["TILES_PROCESSED"] == 4 and results["TILES_SKIPPED"] == 0
    assert slumps_found(results["OUTPUT"], region["slumps"]) == EXPECTED
    assert sorted(os.listdir(tmp_path / "tiles")) == ["tile_A", "tile_B", "tile_C", "tile_D"]
    assert sorted(os.listdir(tmp_path / "tiles" / "tile_A")) == ["binarized.tif", "extent.tif",
                                                                 "prediction_segments.gpkg"]
    page = (tmp_path / "report.html").read_text()
    assert '<td id="features">6</td>' in page and '<td id="duplicates">2</td>' in page and "tile_D" in page
    assert sorted(os.listdir(tmp_path)) == ["map.gpkg", "report.html", "tiles"]
    # Last: QGIS's own OGR provider writes map.gpkg.aux.xml when it loads the map on GDAL 3.10.
    layer = QgsVectorLayer(results["OUTPUT"], "map", "ogr")
    assert layer.isValid() and layer.crs().authid() == "EPSG:3413" and layer.featureCount() == 6


def test_processtiles_through_qgis_process_with_a_broken_tile(profile, region, tmp_path):
    inputs = tmp_path / "tiles"
    shutil.copytree(region["inputs"], inputs)
    (inputs / "tile_X").mkdir()
    (inputs / "tile_X" / "probabilities.tif").write_bytes(b"not a tiff")
    shutil.copy(inputs / "tile_D" / "quality_data_mask.tif", inputs / "tile_X")
    run = qgis_process(profile, "run", "darts:processtiles", "--json", "--", f"INPUT_FOLDER={inputs}", "WORKERS=2",
                       "TARGET_CRS=EPSG:3995", "THRESHOLD=0.5", "MIN_OBJECT_SIZE=32", f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout[run.stdout.index("{"):])["results"]
    assert results["FEATURES"] == 6 and results["TILES_SKIPPED"] == 1
    assert "Tile tile_X skipped" in run.stdout + run.stderr and "tile_X/probabilities.tif" in run.stdout + run.stderr
    assert slumps_found(tmp_path / "map.gpkg", {name: (*scene.to_crs([(x, y)], 3413, 3995)[0], r) for name, (x, y, r)
                                                in region["slumps"].items()}) == EXPECTED
    stopped = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={inputs}", "STOP_ON_ERROR=true",
                           f"OUTPUT={tmp_path / 'stopped.gpkg'}")
    assert stopped.returncode != 0 and "tile tile_X" in stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stdout + stopped.stderr and not (tmp_path / "stopped.gpkg").exists()


def test_a_speckled_region_merges_in_time(profile, tmp_path):
    """Issue 20: four tiles of checkerboard probabilities, boundary clip, no erosion, minimum
    size 1 (one object of ~45 000 diagonal parts per tile) hung in the merge (GEOS Intersects,
    killed after 300 s). Now it ends (about 20 s here), with progress inside the merge."""
    scene.speckled_region(str(tmp_path / "tiles"))
    run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={tmp_path / 'tiles'}", "WORKERS=1",
                       "BOUNDARY=clip", "MASK_EROSION_SIZE=0", "MIN_OBJECT_SIZE=1", f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Merging the tiles' objects (" in run.stdout + run.stderr
    with open_read_only(tmp_path / "map.gpkg", "vector") as dataset:
        features = [f.GetGeometryRef().Clone() for f in dataset.GetLayer(0)]
    assert len(features) == 4 and sum(g.GetGeometryCount() for g in features) > 100_000


def test_workers_are_capped_through_qgis_process(profile, region, tmp_path):
    """Issue 20: WORKERS=99999 started a process per tile (301 for 300 tiles, ~10 GB)."""
    run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}",
                       "WORKERS=99999", f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"WORKERS=99999 lowered to {min(4, len(os.sched_getaffinity(0)))}: 4 tiles" in run.stdout + run.stderr
    assert slumps_found(tmp_path / "map.gpkg", region["slumps"]) == EXPECTED


def test_outputs_that_clash_with_inputs_are_refused_before_the_first_tile(profile, tmp_path):
    """Issue 20: each of these was refused only after every tile was processed (hours on a
    region); now before the first tile, with one line, nothing written, the inputs as they were."""
    inputs = tmp_path / "tiles"
    scene.region(str(inputs), mask="extent")
    water = scene.exclusion_polygons(str(tmp_path / "water.gpkg"), [(0.0, 0.0)], epsg=3413)
    (tmp_path / "not-a-geopackage.gpkg").write_text("some text, not a GeoPackage")
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    cases = [
        ([f"OUTPUT_TILES={inputs}"], "also an input"),
        ([f"OUTPUT_REPORT={inputs / 'tile_A' / 'probabilities.tif'}"], "also an input"),
        ([f"EXCLUDE={water}", f"OUTPUT={water}"], "also an input"),
        ([f"EXCLUDE={water}", f"OUTPUT=ogr:dbname='{water}' table=\"slumps\""], "also an input"),
        ([f"OUTPUT=ogr:dbname='{tmp_path / 'not-a-geopackage.gpkg'}' table=\"slumps\""],
         "not a readable GeoPackage"),
    ]
    for extra, words in cases:
        if not any(argument.startswith("OUTPUT=") for argument in extra):
            extra = [*extra, f"OUTPUT={tmp_path / 'map.gpkg'}"]
        run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={inputs}", "WORKERS=1", *extra)
        text = run.stdout + run.stderr
        assert run.returncode != 0 and words in text and "Traceback" not in text, (extra, text)
        assert "Tile tile_" not in text, (extra, text)  # no tile was processed
        assert {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()} == before, extra


def test_a_lat_lon_box_excludes_what_it_covers_through_qgis_process(profile, region, tmp_path):
    """Issue 20: a 4-vertex box over 60-90°N in EPSG:4326 excluded nothing (report: 0 removed,
    no warning). Now every tile lies wholly in it: no slump left, 100 % of each tile's pixels
    in the mask, in the log and the report. A polygon over a tile that covers no pixel centre
    gets a warning."""
    box = tmp_path / "arctic.gpkg"
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(box))
    layer = dataset.CreateLayer("arctic", scene.srs_of(4326), ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON ((-180 60, 180 60, 180 90, -180 90, -180 60))"))
    layer.CreateFeature(feature)
    dataset = None
    run = qgis_process(profile, "run", "darts:processtiles", "--json", "--", f"INPUT_FOLDER={region['inputs']}",
                       f"EXCLUDE={box}", f"OUTPUT={tmp_path / 'map.gpkg'}", f"OUTPUT_REPORT={tmp_path / 'report.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout[run.stdout.index("{"):])["results"]["FEATURES"] == 0
    assert "Tile tile_A, 100 % of its pixels in the exclusion mask" in run.stdout + run.stderr
    assert "(100 % of the pixels)" in (tmp_path / "report.html").read_text()
    x, y = scene.ground_of_pixel(region["tiles"]["tile_A"], 100, 100)  # a pixel corner in tile A
    tiny = scene.exclusion_polygons(str(tmp_path / "tiny.gpkg"), [(x, y)], half_side=0.5, epsg=3413)
    run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}",
                       f"EXCLUDE={tiny}", f"OUTPUT={tmp_path / 'tiny-map.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Tile tile_A: the exclusion polygons overlap it in their own CRS but cover no pixel centre" in run.stdout + run.stderr
    assert "tile_B: the exclusion polygons" not in run.stdout + run.stderr


def test_exclusion_polygons_through_qgis_process(profile, region, tmp_path):
    slumps = region["slumps"]
    water = scene.exclusion_polygons(str(tmp_path / "water.gpkg"), [slumps["a_only"][:2]], epsg=32608)
    run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}",
                       f"EXCLUDE={water}", "STATISTICS_SCALE=percent", f"OUTPUT={tmp_path / 'map.gpkg'}",
                       f"OUTPUT_REPORT={tmp_path / 'report.html'}")
    assert run.returncode == 0, run.stdout + run.stderr
    found = slumps_found(tmp_path / "map.gpkg", slumps)
    assert found == {name: value for name, value in EXPECTED.items() if name != "a_only"}
    with open_read_only(tmp_path / "map.gpkg", "vector") as dataset:
        definition = dataset.GetLayer(0).GetLayerDefn()
        assert definition.GetFieldDefn(definition.GetFieldIndex("min")).GetType() == ogr.OFTInteger64
    assert "removed in the exclusion mask" in (tmp_path / "report.html").read_text()
    raster = tmp_path / "not-polygons.tif"
    shutil.copy(os.path.join(region["inputs"], "tile_A", "quality_data_mask.tif"), raster)
    refused = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}",
                           f"EXCLUDE={raster}", f"OUTPUT={tmp_path / 'refused.gpkg'}")
    assert refused.returncode != 0 and not (tmp_path / "refused.gpkg").exists()


def test_processtiles_on_a_dask_cluster(profile, region, tmp_path, cluster):
    run = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}",
                       f"DASK_SCHEDULER={cluster}", f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dask cluster" in run.stdout
    assert slumps_found(tmp_path / "map.gpkg", region["slumps"]) == EXPECTED


def test_a_model_chains_processtiles(provider, region, tmp_path):
    """Tiles to one map, then QGIS's own 'Extract by attribute' keeps the slumps seen twice."""
    model = processtiles_then_extract("n_tiles", 3, "2", "Seen twice")  # 3: >=
    results = processing.run(model, {"tiles": region["inputs"], "seen_twice": str(tmp_path / "twice.gpkg")})
    assert slumps_found(results["seen_twice"], region["slumps"]) == {"overlap": ("tile_A", 2),
                                                                     "bc_overlap": ("tile_B", 2)}


@pytest.mark.parametrize("workers", [1, 2])
def test_cancel_leaves_no_output(provider, region, tmp_path, workers):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= 20 and feedback.cancel())
    with pytest.raises(QgsProcessingException, match="Canceled"):
        processing.run("darts:processtiles", {"INPUT_FOLDER": region["inputs"], "WORKERS": workers,
                                              "OUTPUT": str(tmp_path / "map.gpkg"),
                                              "OUTPUT_TILES": str(tmp_path / "tiles")}, feedback=feedback)
    assert [name for _, _, names in os.walk(tmp_path) for name in names] == []


def test_the_default_target_crs_is_the_cores():
    from darts_postprocessing.definitions import DEFAULT_TARGET_CRS
    from darts_postprocessing.definitions import DEFAULT_TARGET_CRS as CORE_DEFAULT

    assert DEFAULT_TARGET_CRS == CORE_DEFAULT


def test_bad_inputs_are_clear(provider, region, tmp_path):
    with pytest.raises(QgsProcessingException, match="geographic"):
        processing.run("darts:processtiles", {"INPUT_FOLDER": region["inputs"], "TARGET_CRS": "EPSG:4326",
                                              "OUTPUT": str(tmp_path / "map.gpkg")})
    (tmp_path / "nothing").mkdir()
    with pytest.raises(QgsProcessingException, match="no tile found"):
        processing.run("darts:processtiles", {"INPUT_FOLDER": str(tmp_path / "nothing"),
                                              "OUTPUT": str(tmp_path / "map.gpkg")})
    assert not os.path.exists(tmp_path / "map.gpkg")
