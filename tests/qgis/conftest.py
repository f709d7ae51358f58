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


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A real dask.distributed scheduler and two single-threaded worker processes, started as
    their own programs without this project on their path (the plugin ships its core to them)."""
    import subprocess
    import time

    folder = tmp_path_factory.mktemp("cluster")
    address_file = folder / "scheduler.json"
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    processes = [subprocess.Popen(["dask-scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(address_file)], cwd=folder, env=environment,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(200):
        if address_file.exists() and address_file.stat().st_size:
            break
        time.sleep(0.1)
    processes.append(subprocess.Popen(["dask-worker", "--scheduler-file", str(address_file), "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard"], cwd=folder, env=environment,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    import json

    address = json.loads(address_file.read_text())["address"]
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for process in processes[::-1]:
        process.terminate()
        process.wait(timeout=30)
