"""A real DARTS run (tile folders as DARTS' exporter writes them: two years, two UTM zones,
dated scene ids, a PlanetScope orthotile nested in its tile folder, _metadata_* beside them)
becomes per-year maps through qgis_process, processing.run (layers loaded: the map and its
coverage) and a model; inputs untouched."""

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from models import processtiles_then_extract
from qgis import processing
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
)
from qgis_cli import qgis_process
from reading import open_read_only

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from darts_folders import darts_run  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("darts") / "run"
    return {**darts_run(folder), "root": str(folder)}


def hashes(root):
    return {os.path.join(folder, name): hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
            for folder, _, names in os.walk(root) for name in names}


def per_year(path, layer):
    counts = {}
    with open_read_only(path, "vector") as dataset:
        for feature in dataset.GetLayerByName(layer):
            counts[feature["year"]] = counts.get(feature["year"], 0) + 1
    return counts


def test_qgis_process_makes_per_year_maps_from_a_darts_run(profile, run, tmp_path):
    before = hashes(run["root"])
    out = tmp_path / "out"
    result = qgis_process(profile, "run", "darts:processtiles", "--json", "--", f"INPUT_FOLDER={run['root']}",
                          "WORKERS=2", f"OUTPUT={out / 'region.gpkg'}", f"OUTPUT_REPORT={out / 'region.html'}")
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout)["results"]
    assert results["TILES_PROCESSED"] == 6 and results["TILES_SKIPPED"] == 0
    assert per_year(out / "region.gpkg", "region") == {2019: len(run["slumps"][2019]), 2024: len(run["slumps"][2024])}
    with open_read_only(out / "region.gpkg", "vector") as dataset:
        assert dataset.GetLayerByName("region_coverage").GetFeatureCount() == 6
    page = (out / "region.html").read_text()
    assert 'id="groups"' in page and "<th>2019</th>" in page and "<th>2024</th>" in page
    assert "prediction_extent.gpkg as given" in page
    assert "_metadata" not in result.stdout + result.stderr  # passed over silently
    assert "partially supported" not in result.stdout + result.stderr  # DARTS' GeoPackage 1.4 read quietly
    assert hashes(run["root"]) == before  # nothing written or changed beside the inputs


def test_processing_run_loads_the_map_with_its_coverage_under_it(provider, run, tmp_path):
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    QgsProject.instance().clear()
    output = str(tmp_path / "map.gpkg")
    results = processing.runAndLoadResults("darts:processtiles", {"INPUT_FOLDER": run["root"], "WORKERS": 1,
                                                                  "OUTPUT": output}, context=context,
                                           feedback=QgsProcessingFeedback())
    names = sorted(layer.name() for layer in QgsProject.instance().mapLayers().values())
    assert any("coverage" in name.lower() for name in names), names
    coverage = next(layer for layer in QgsProject.instance().mapLayers().values() if "coverage" in layer.name().lower())
    assert coverage.featureCount() == 6 and coverage.source().endswith("layername=map_coverage")
    assert results["FEATURES"] == len(run["slumps"][2019]) + len(run["slumps"][2024])
    assert results["OUTPUT_COVERAGE"] == f"{output}|layername=map_coverage"  # for models: the coverage too
    QgsProject.instance().clear()


def test_a_model_takes_one_year_of_a_darts_run(provider, run, tmp_path):
    """processtiles, then QGIS's 'Extract by attribute' keeps the 2024 map."""
    model = processtiles_then_extract("year", 0, "2024", "Map of 2024")  # 0: =
    results = processing.run(model, {"tiles": run["root"], "map_of_2024": str(tmp_path / "y2024.gpkg")})
    assert per_year(results["map_of_2024"], "y2024") == {2024: len(run["slumps"][2024])}


def test_subset_and_grouping_through_qgis_process(profile, tmp_path):
    root = tmp_path / "run"
    darts_run(root, years=(2019,), subsets=("with_tcvis",))
    result = qgis_process(profile, "run", "darts:processtiles", "--json", "--", f"INPUT_FOLDER={root}",
                          "SUBSET=with_tcvis", "GROUP_BY=none", "BINARIZATION=as_exported",
                          f"OUTPUT={tmp_path / 'm.gpkg'}")
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(result.stdout)["results"]
    assert results["TILES_PROCESSED"] == 1 and results["TILES_SKIPPED"] == 2
    assert "probabilities-with_tcvis.tif" in result.stdout + result.stderr


def test_a_dask_cluster_gives_the_same_per_year_map(profile, run, tmp_path, cluster):
    def rows(path):
        with open_read_only(path, "vector") as dataset:
            return sorted((name, repr(sorted(f.items().items())), f.GetGeometryRef().ExportToWkb())
                          for name in ("map", "map_coverage") for f in dataset.GetLayerByName(name))

    for name, extra in (("local", ["WORKERS=1"]), ("cluster", [f"DASK_SCHEDULER={cluster}"])):
        result = qgis_process(profile, "run", "darts:processtiles", "--", f"INPUT_FOLDER={run['root']}", *extra,
                              f"OUTPUT={tmp_path / name / 'map.gpkg'}")
        assert result.returncode == 0, result.stdout + result.stderr
    assert rows(tmp_path / "local" / "map.gpkg") == rows(tmp_path / "cluster" / "map.gpkg")
