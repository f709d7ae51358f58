"""A real, headless QGIS with the Processing framework and this plugin's provider."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, "/usr/share/qgis/python/plugins")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # rasters.py

from qgis.core import QgsApplication  # noqa: E402

_APP = QgsApplication([], False)
_APP.initQgis()

from processing.core.Processing import Processing  # noqa: E402

Processing.initialize()

from qgis_cli import qgis_process  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def provider():
    from darts_postprocessing.darts_provider import DartsProvider

    registry = QgsApplication.processingRegistry()
    if registry.providerById("darts") is None:
        instance = DartsProvider()
        registry.addProvider(instance)
    return registry.providerById("darts")


@pytest.fixture()
def sample(tmp_path):
    """A DARTS-like tile (uint8 percent probabilities + quality mask) in a fresh folder."""
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(tmp_path / "input"), size=200, seed=1)
    return {"probabilities": probabilities, "quality": quality, "folder": tmp_path}


@pytest.fixture(scope="session")
def profile(tmp_path_factory):
    """Environment for qgis_process: a throw-away QGIS settings folder with the staged plugin
    installed and enabled."""
    root = tmp_path_factory.mktemp("qgis-profile")
    plugins = root / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "stage", str(plugins)], check=True)
    environment = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(root), QT_QPA_PLATFORM="offscreen")
    enabled = qgis_process(environment, "plugins", "enable", "darts_postprocessing")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return environment
