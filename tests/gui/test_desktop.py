"""A real QGIS desktop under Xvfb: the plugin enabled in a fresh profile, the prepareexport
dialog opened and run, the output layers in the project with their styles."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output"

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                                reason="needs xvfb-run and the QGIS desktop")


def desktop(tmp_path, mode, parameters, layers, screenshot, selected=None, algorithm="darts:prepareexport"):
    """Start the QGIS desktop under Xvfb with the staged plugin in a fresh profile, run
    gui_script.py in it; its JSON report."""
    settings_root = tmp_path / "qgis-settings"  # QGIS keeps profiles in <root>/profiles/<name>
    profiles = settings_root / "profiles"
    plugins = profiles / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "stage", str(plugins)], check=True)
    (profiles / "default" / "QGIS").mkdir()
    (profiles / "default" / "QGIS" / "QGIS3.ini").write_text(
        "[PythonPlugins]\ndarts_postprocessing=true\n[qgis]\ncheckVersion=false\nshowTips=false\n")
    SCREENSHOTS.mkdir(exist_ok=True)
    report = tmp_path / "report.json"
    environment = dict(os.environ, DARTS_GUI_PARAMS=json.dumps(parameters), DARTS_GUI_REPORT=str(report),
                       DARTS_GUI_LAYERS=str(layers), DARTS_GUI_MODE=mode, DARTS_GUI_SCREENSHOT=str(screenshot),
                       DARTS_GUI_SELECTED=selected or "", DARTS_GUI_ALGORITHM=algorithm)
    environment.pop("QT_QPA_PLATFORM", None)
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "qgis", "--profiles-path", str(settings_root),
               "--profile", "default", "--nologo", "--noversioncheck", "--code",
               str(Path(__file__).with_name("gui_script.py"))]
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["plugin_loaded"] and not result["errors"], result
    return result


def object_pixels(screenshot, colour=(215, 48, 31)):
    """How many pixels of the screenshot have the objects' red (or `colour`)."""
    import numpy as np
    from reading import pixels

    image = pixels(screenshot)[:3].astype(int)
    return int((np.abs(image - np.array(colour)[:, None, None]).max(axis=0) <= 12).sum())


OUTPUTS = ["Object polygons", "Binarized segmentation", "Masked probabilities", "Extent"]


@pytest.mark.parametrize("blocks", [False, True], ids=["in-memory", "block-wise"])
def test_dialog_runs_and_layers_are_styled(tmp_path, blocks):
    """The dialog's run with a layer selected in the Layers panel, in memory and
    (MEMORY_LIMIT=1 MB on a 1200 px tile) block by block: what the dialog shows, where the
    layers go and how they look."""
    sys.path.insert(0, str(REPO / "scripts"))
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "tile_7"), size=1200 if blocks else 400, seed=3)
    screenshot = SCREENSHOTS / f"desktop-prepareexport{'-blocks' if blocks else ''}.png"
    parameters = {"PROBABILITIES": probabilities, "QUALITY_MASK": quality, "MASK_EROSION_SIZE": 5,
                  "MIN_OBJECT_SIZE": 16, "QUALITY_LEVEL": "low_quality",
                  "OUTPUT_BINARIZED": str(tmp_path / "binarized.tif"), "OUTPUT_EXTENT": str(tmp_path / "extent.tif"),
                  "OUTPUT_PROBABILITIES": str(tmp_path / "probabilities.tif"),
                  "OUTPUT_POLYGONS": str(tmp_path / "slumps.gpkg"), "OUTPUT_REPORT": str(tmp_path / "report.html"),
                  **({"MEMORY_LIMIT": 1} if blocks else {})}
    result = desktop(tmp_path, "dialog", parameters, 5, screenshot, selected=quality)
    assert result["selected_before_run"] == "selected basemap"
    layers = {Path(layer["source"].split("|")[0]).name: layer for layer in result["layers"]}
    binarized, extent, probs = layers["binarized.tif"], layers["extent.tif"], layers["probabilities.tif"]
    assert binarized["renderer"] == "paletted" and binarized["classes"]["1"] == [215, 48, 31, 255]
    assert binarized["classes"]["0"][3] == 0  # transparent background
    assert extent["renderer"] == "paletted" and extent["classes"]["1"][3] == 0 < extent["classes"]["0"][3] < 255
    assert probs["renderer"] == "singlebandpseudocolor" and probs["range"] == [0.0, 1.0]
    polygons = layers["slumps.gpkg"]
    assert polygons["renderer"] == "singleSymbol" and polygons["fill_alpha"] == 0
    assert polygons["strokes"][-1] == "#ffdd00" and polygons["features"] > 0  # yellow over a dark halo
    # the run's layers in one group named after the tile, in a fixed order, whatever was selected
    assert result["tree"] == [["tile_7 (threshold 0.50)", [f"{name} (tile_7)" for name in OUTPUTS]],
                              "selected basemap"]
    assert object_pixels(screenshot) > (20 if blocks else 200)  # the objects' red is visible in the canvas
    log = result["dialog_log"]
    assert ("Processing in blocks of 512 x 512" in log) == blocks, log[-2000:]
    assert re.search(r"Result: \d+ objects kept; removed: \d+ touching invalid data", log), log[-2000:]
    if not blocks:
        assert log.count("Tracing polygons") == 1, log  # progress text once per stage
    # the report opens in the Results Viewer; the help button opens the shipped help page
    assert result["results_viewer"] == [["Report", str(tmp_path / "report.html")]]
    assert result["help_url"].startswith("file://") and result["help_url"].endswith("/help/prepareexport.html")
    assert result["opened_urls"] == [result["help_url"]]
    shown = result["widgets"]
    assert shown["QUALITY_LEVEL"]["items"] == ["All pixels (quality ignored)", "Low and high quality (1, 2)",
                                               "High quality only (2)"]
    assert shown["QUALITY_LEVEL"]["value"] == "low_quality"  # the value stays the id
    assert shown["SIZE_CONNECTIVITY"]["current"] == "8 neighbours (diagonals connect)"
    assert shown["THRESHOLD"]["decimals"] == 2 and shown["THRESHOLD"]["text"] == "0.50"
    assert shown["EDGE_EROSION_SIZE"]["special"] in shown["EDGE_EROSION_SIZE"]["label"]  # "Not set" both
    for name in ("PROBABILITIES", "QUALITY_MASK", "THRESHOLD", "MASK_EROSION_SIZE", "MIN_OBJECT_SIZE",
                 "QUALITY_LEVEL"):
        assert len(shown[name]["tooltip"]) > len(name) + 40, (name, shown[name]["tooltip"])


def test_batch_of_two_tiles_tells_the_tiles_apart(tmp_path):
    """Two tiles from the batch dialog: one group per tile, layer names with the tile."""
    sys.path.insert(0, str(REPO / "scripts"))
    from sample_tile import write_sample_tile

    rows = []
    for seed, name in ((3, "tile_A"), (4, "tile_B")):
        probabilities, quality = write_sample_tile(str(tmp_path / name), size=300, seed=seed)
        out = tmp_path / f"out_{name}"
        rows.append({"PROBABILITIES": probabilities, "QUALITY_MASK": quality, "THRESHOLD": 0.5,
                     "MASK_EROSION_SIZE": 5, "MIN_OBJECT_SIZE": 16, "QUALITY_LEVEL": "low_quality",
                     "OUTPUT_BINARIZED": str(out / "binarized.tif"), "OUTPUT_EXTENT": str(out / "extent.tif"),
                     "OUTPUT_POLYGONS": str(out / "slumps.gpkg")})
    result = desktop(tmp_path, "batch", rows, 6, SCREENSHOTS / "desktop-batch.png")
    assert result["batch_rows"] == 2
    combos = [list(items) for items in result["batch_combos"]]  # the batch table's choices show words too
    assert ["All pixels (quality ignored)", "Low and high quality (1, 2)", "High quality only (2)"] in combos, combos
    assert not [items for items in combos if "low_quality" in items or "cuda" in items], combos
    outputs = ["Object polygons", "Binarized segmentation", "Extent"]
    groups = {group: layers for group, layers in result["tree"]}
    assert groups == {f"{name} (threshold 0.50)": [f"{output} ({name})" for output in outputs]
                      for name in ("tile_A", "tile_B")}, result["tree"]
    assert object_pixels(SCREENSHOTS / "desktop-batch.png") > 100


def test_processtiles_dialog_loads_the_merged_map(tmp_path):
    """A real DARTS run (two years, two UTM zones, tile folders as DARTS writes them) to per-year
    maps from the dialog, with worker processes: the merged polygons load styled (yellow
    outlines visible in the canvas) over the tiles' coverage (grey), the log tells tile by tile
    and year by year, the report opens in the Results Viewer."""
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
    from darts_folders import darts_run

    run = darts_run(tmp_path / "darts")
    screenshot = SCREENSHOTS / "desktop-processtiles.png"
    parameters = {"INPUT_FOLDER": str(tmp_path / "darts"), "WORKERS": 2, "OUTPUT": str(tmp_path / "region.gpkg"),
                  "OUTPUT_REPORT": str(tmp_path / "region.html")}
    result = desktop(tmp_path, "dialog", parameters, 2, screenshot, algorithm="darts:processtiles")
    layers = {layer["source"].split("|layername=")[1] if "|layername=" in layer["source"] else "map": layer
              for layer in result["layers"]}
    assert set(layers) == {"map", "region_coverage"}, result["layers"]
    slumps, coverage = layers["map"], layers["region_coverage"]
    features = len(run["slumps"][2019]) + len(run["slumps"][2024])
    assert slumps["features"] == features and slumps["renderer"] == "singleSymbol"
    assert slumps["strokes"][-1] == "#ffdd00" and coverage["features"] == 6
    log = result["dialog_log"]
    assert "6 tiles processed, 0 skipped" in log and "year 2019: 3 tiles" in log and "year 2024: 3 tiles" in log, \
        log[-2000:]
    assert result["results_viewer"] == [["Report", str(tmp_path / "region.html")]]
    assert result["help_url"].endswith("/help/processtiles.html")
    assert object_pixels(screenshot, (255, 221, 0)) > 50  # the outlines are drawn
    assert object_pixels(screenshot, (110, 110, 110)) > 50  # and the tiles' coverage under them


def test_compareyears_dialog_shows_the_changes_with_a_legend(tmp_path):
    """Two years of a DARTS run merged by processtiles (the command line), compared from the
    dialog: one layer classed by change with a legend in words; every slump of 2019 grew by 20 m
    in 2024 and one is new, and the canvas shows the classes' colours."""
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
    from darts_folders import darts_run
    from darts_postprocessing import cli

    run = darts_run(tmp_path / "darts")
    assert cli.main(["processtiles", f"INPUT_FOLDER={tmp_path / 'darts'}", f"OUTPUT={tmp_path / 'region.gpkg'}",
                     "WORKERS=1", "--quiet"]) == 0
    screenshot = SCREENSHOTS / "desktop-compareyears.png"
    parameters = {"INPUT": [str(tmp_path / "region.gpkg")], "OUTPUT": str(tmp_path / "changes.gpkg"),
                  "OUTPUT_REPORT": str(tmp_path / "changes.html")}
    result = desktop(tmp_path, "dialog", parameters, 1, screenshot, algorithm="darts:compareyears")
    (layer,) = result["layers"]
    assert layer["renderer"] == "categorizedSymbol" and layer["field"] == "change", layer
    assert [value for value, _, _ in layer["categories"]] == ["new", "grown", "stable", "shrunk", "gone", "unobserved"]
    assert "stable (area change within the tolerance)" in layer["legend"]
    new = len(run["slumps"][2024]) - len(run["slumps"][2019])
    assert layer["counts"]["new"] == new and layer["counts"]["grown"] == len(run["slumps"][2019]), layer["counts"]
    assert "2019 → 2024" in result["dialog_log"], result["dialog_log"][-2000:]
    assert result["results_viewer"] == [["Report", str(tmp_path / "changes.html")]]
    assert object_pixels(screenshot, (253, 141, 60)) + object_pixels(screenshot, (254, 190, 143)) > 50  # grown


def test_evaluate_dialog_loads_the_missed_slumps(tmp_path):
    """A folder of DARTS tiles against digitized slumps, from the dialog: the table, the best
    setting in the log, the missed slump (drawn where nothing was predicted) styled in cyan."""
    sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
    from darts_folders import darts_region

    _, reference, drawn = darts_region(tmp_path)
    screenshot = SCREENSHOTS / "desktop-evaluate.png"
    parameters = {"INPUT_FOLDER": str(tmp_path / "run"), "REFERENCE": reference, "BOUNDARY": 1,
                  "THRESHOLDS": "0.3,0.5,0.7", "MIN_OBJECT_SIZES": "0,32", "OUTPUT_TABLE": str(tmp_path / "scores.csv"),
                  "OUTPUT_FALSE_POSITIVES": str(tmp_path / "fp.gpkg"), "OUTPUT_MISSED": str(tmp_path / "missed.gpkg"),
                  "OUTPUT_REPORT": str(tmp_path / "evaluation.html")}
    result = desktop(tmp_path, "dialog", parameters, 2, screenshot, algorithm="darts:evaluate")
    layers = {layer["name"].split(" (")[0]: layer for layer in result["layers"]}
    assert set(layers) == {"False positives", "Missed reference slumps"}, result["layers"]
    missed = layers["Missed reference slumps"]
    assert missed["features"] == 1 and missed["strokes"] == ["#0078c8"], missed
    assert "t=0.30, min size 0" in missed["name"]
    assert "Best setting by object_f1: threshold 0.3" in result["dialog_log"], result["dialog_log"][-2000:]
    assert result["results_viewer"] == [["Report", str(tmp_path / "evaluation.html")]]
    assert object_pixels(screenshot, (0, 120, 200)) > 20  # the missed slump's outline
    assert drawn > 0
