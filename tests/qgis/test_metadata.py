"""metadata.txt is complete and what QGIS's plugin manager needs."""

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_metadata_is_complete():
    parser = configparser.ConfigParser()
    parser.read(REPO / "metadata.txt")
    general = parser["general"]
    for key in ("name", "description", "about", "version", "author", "email", "repository", "qgisMinimumVersion",
                "qgisMaximumVersion", "hasProcessingProvider"):
        assert general.get(key, "").strip(), key
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMaximumVersion"] == "4.99"
    assert tuple(map(int, general["qgisMinimumVersion"].split("."))) <= (3, 40)
    assert (REPO / general["icon"]).is_file()
    assert general["version"].count(".") == 2


def test_plugin_loads_through_qgis_utils(package_parent):
    """QGIS's own loader finds, starts and unloads the plugin (as the desktop does)."""
    import sys

    from qgis import utils
    from qgis.core import QgsApplication

    sys.path.insert(0, str(package_parent))
    assert utils.loadPlugin("darts_postprocessing")
    assert utils.startPlugin("darts_postprocessing") or "darts_postprocessing" in utils.active_plugins
    assert QgsApplication.processingRegistry().providerById("darts") is not None
    assert utils.unloadPlugin("darts_postprocessing")
