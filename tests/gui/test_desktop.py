"""A real QGIS desktop under Xvfb: the plugin enabled in a fresh profile, the prepareexport
dialog opened and run, the output layers in the project with their styles."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output"

pytestmark = pytest.mark.skipif(shutil.which("xvfb-run") is None or shutil.which("qgis") is None,
                                reason="needs xvfb-run and the QGIS desktop")


@pytest.mark.parametrize("blocks", [False, True], ids=["in-memory", "block-wise"])
def test_dialog_runs_and_layers_are_styled(tmp_path, blocks):
    """The dialog's run, in memory and (MEMORY_LIMIT=1 MB on a 1200 px tile) block by block."""
    sys.path.insert(0, str(REPO / "scripts"))
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=1200 if blocks else 400, seed=3)
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
    screenshot = SCREENSHOTS / f"desktop-prepareexport{'-blocks' if blocks else ''}.png"
    parameters = {"PROBABILITIES": probabilities, "QUALITY_MASK": quality, "MASK_EROSION_SIZE": 5,
                  "MIN_OBJECT_SIZE": 16, "QUALITY_LEVEL": "low_quality",
                  "OUTPUT_BINARIZED": str(tmp_path / "binarized.tif"), "OUTPUT_EXTENT": str(tmp_path / "extent.tif"),
                  "OUTPUT_PROBABILITIES": str(tmp_path / "probabilities.tif"),
                  "OUTPUT_POLYGONS": str(tmp_path / "slumps.gpkg"), **({"MEMORY_LIMIT": 1} if blocks else {})}
    environment = dict(os.environ, DARTS_GUI_PARAMS=json.dumps(parameters), DARTS_GUI_REPORT=str(report),
                       DARTS_GUI_LAYERS="4",
                       DARTS_GUI_SCREENSHOT=str(screenshot))
    environment.pop("QT_QPA_PLATFORM", None)
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "qgis", "--profiles-path", str(settings_root),
               "--profile", "default", "--nologo", "--noversioncheck", "--code",
               str(Path(__file__).with_name("gui_script.py"))]
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["plugin_loaded"] and not result["errors"], result
    layers = {Path(layer["source"].split("|")[0]).name: layer for layer in result["layers"]}
    binarized, extent, probs = layers["binarized.tif"], layers["extent.tif"], layers["probabilities.tif"]
    assert binarized["renderer"] == "paletted" and binarized["classes"]["1"] == [215, 48, 31, 255]
    assert binarized["classes"]["0"][3] == 0  # transparent background
    assert extent["renderer"] == "paletted" and 0 < extent["classes"]["1"][3] < 255
    assert probs["renderer"] == "singlebandpseudocolor" and probs["range"] == [0.0, 1.0]
    assert result["layer_order"].index(binarized["name"]) < result["layer_order"].index(probs["name"])  # on top
    polygons = layers["slumps.gpkg"]
    assert polygons["renderer"] == "singleSymbol" and polygons["fill_alpha"] == 0 and polygons["stroke"] == "#d7301f"
    assert polygons["features"] > 0
    assert result["layer_order"].index(polygons["name"]) < result["layer_order"].index(binarized["name"])
    assert screenshot.exists() and screenshot.stat().st_size > 1000
    assert ("Processing in blocks of 512 x 512" in result["dialog_log"]) == blocks, result["dialog_log"][-2000:]
