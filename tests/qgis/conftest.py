"""A real, headless QGIS with the Processing framework and this plugin's provider."""

import os
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
