"""metadata.txt is complete and what QGIS's plugin manager needs."""

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_metadata_is_complete():
    parser = configparser.ConfigParser()
    parser.read(REPO / "metadata.txt")
    general = parser["general"]
    for key in ("name", "description", "about", "version", "author", "email", "qgisMinimumVersion",
                "qgisMaximumVersion", "hasProcessingProvider"):
        assert general.get(key, "").strip(), key
    # No invented web address: the repository key (mandatory for plugins.qgis.org) stays empty
    # until the project has a public one; homepage and tracker (optional) are left out.
    assert "repository" in general and "homepage" not in general and "tracker" not in general
    assert "http" not in (REPO / "metadata.txt").read_text()
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


def test_help_pages_ship_and_the_help_button_opens_them(provider, tmp_path):
    """scripts/package.py writes a help page per algorithm into the plugin; each algorithm's
    helpUrl is that shipped page (file://), never a web address."""
    import subprocess
    import sys
    import zipfile

    from qgis.PyQt.QtCore import QUrl

    archive = tmp_path / "plugin.zip"
    subprocess.run([sys.executable, str(REPO / "scripts" / "package.py"), "zip", str(archive)], check=True)
    with zipfile.ZipFile(archive) as plugin:
        names = set(plugin.namelist())
        for algorithm in provider.algorithms():
            page = f"darts_postprocessing/help/{algorithm.name()}.html"
            assert page in names, page
            text = plugin.read(page).decode()
            assert algorithm.displayName() in text and f'id="{algorithm.parameterDefinitions()[0].name()}"' in text
            assert '<div id="readme">\n<p' in text  # the algorithm's README section is in it
        assert not [name for name in names if "__pycache__" in name]
        # the command line without QGIS (python3 -m darts_postprocessing) ships with the plugin
        assert {"darts_postprocessing/cli.py", "darts_postprocessing/__main__.py"} <= names
    for algorithm in provider.algorithms():
        url = algorithm.helpUrl()  # the repository checkout has no generated help/: no button
        assert url == "" or QUrl(url).isLocalFile()
