"""core/files: all outputs of a run appear together or none does, a written file is proven whole
(a full disk, a failing close), inputs are read without anything written beside them."""
import os
import resource
import signal
import subprocess
import sys
import numpy as np
import pytest


# -- 7. files (and 4: GeoTIFFs keep float64) -------------------------------------------

def test_float64_geotiff_keeps_float64(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core.files.gdal import open_read_only
    from darts_postprocessing.core.files.geotiff import write_geotiff

    values = np.array([[0.5 + 1e-9, np.nan]])
    write_geotiff(str(tmp_path / "p.tif"), values, (0, 1, 0, 0, 0, -1), None, float("nan"))
    with open_read_only(tmp_path / "p.tif") as dataset:
        np.testing.assert_array_equal(dataset.ReadAsArray(), values)


WRITE_UNDER_LIMIT = """
import sys, numpy as np
from darts_postprocessing.core import polygonize
binary = np.zeros((160, 160), np.uint8)
binary[::2, ::2] = 1
try:
    polygonize(binary, (0, 10, 0, 0, 0, -10), "EPSG:32606", sys.argv[1])
except OSError as error:
    print("OSError:", error)
    sys.exit(3)
"""


def test_geopackage_failing_while_closing_raises(tmp_path, package_parent):
    """A file-size limit (as on a full disk) that GDAL hits only while flushing the GeoPackage."""
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    script = [sys.executable, "-c", WRITE_UNDER_LIMIT]
    subprocess.run([*script, str(tmp_path / "full.gpkg")], env=environment, check=True)
    limit = (tmp_path / "full.gpkg").stat().st_size * 9 // 10

    def limited():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run([*script, str(tmp_path / "objects.gpkg")], env=environment, preexec_fn=limited,
                            capture_output=True, text=True)
    assert result.returncode == 3 and "could not write" in result.stdout, result.stdout + result.stderr
    assert sorted(os.listdir(tmp_path)) == ["full.gpkg"]


WRITE_RASTER_UNDER_LIMIT = """
import sys, numpy as np
from darts_postprocessing.core.files.geotiff import GeoTiffWindows
from darts_postprocessing.core.files.atomic import AtomicFiles
from darts_postprocessing.core.files.geotiff import write_geotiff
target, how, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
mask = np.zeros((size, size), np.uint8)
mask[::7, ::5] = 1  # a sparse mask: small compressed tiles
grid = (0, 10, 0, 0, 0, -10)
try:
    with AtomicFiles() as files:
        path = files.reserve(target)
        if how == "memory":
            write_geotiff(path, mask, grid, "EPSG:32606", 255)
        else:
            windows = GeoTiffWindows(path, mask.shape, np.uint8, grid, "EPSG:32606", 255)
            for top in range(0, size, 256):
                windows[top:top + 256, 0:size] = mask[top:top + 256]
except OSError as error:
    print("OSError:", error)
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["memory", "blocks"])
@pytest.mark.parametrize("size", [300, 1000])
def test_a_full_disk_while_writing_a_small_geotiff_raises(tmp_path, package_parent, how, size):
    """A file-size limit (as on a full disk) while writing a small, sparse GeoTIFF, in memory
    (write_geotiff) and window by window (GeoTiffWindows): GDAL 3.10 / libtiff 4.7 only print
    the failed write, FlushCache and Close succeed, and the truncated file was committed."""
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    script = [sys.executable, "-c", WRITE_RASTER_UNDER_LIMIT]
    subprocess.run([*script, str(tmp_path / "whole.tif"), how, str(size)], env=environment, check=True)
    whole = (tmp_path / "whole.tif").stat().st_size
    for share in (0.1, 0.5, 0.9):
        limit = int(whole * share)

        def limited(limit=limit):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        target = tmp_path / f"mask-{share}.tif"
        result = subprocess.run([*script, str(target), how, str(size)], env=environment, preexec_fn=limited,
                                capture_output=True, text=True)
        assert result.returncode == 3, (share, result.stdout + result.stderr)
        assert f"could not write {target}" in result.stdout and ".partial" not in result.stdout, result.stdout
        assert sorted(os.listdir(tmp_path)) == ["whole.tif"]  # nothing committed, no temporary left


def digest(folder):
    """{name: sha256} of every file in `folder`."""
    import hashlib

    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_reading_inputs_leaves_nothing_beside_them(tmp_path):
    """Every reader of the core, on a GeoPackage and a GeoTIFF with dataset metadata (as DARTS
    files have): the folder stays byte for byte, no `.aux.xml` appears (GDAL 3.10 wrote one
    beside a GeoPackage closed without reading its metadata)."""
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import polygonize
    from darts_postprocessing.core.files.atomic import replace_layer
    from darts_postprocessing.core.files.exclusion import exclusion_mask, is_vector, polygons_without_crs
    from darts_postprocessing.core.files.gdal import open_read_only
    from darts_postprocessing.core.files.geoparquet import geoparquet_support, read_layer, write_geoparquet
    from darts_postprocessing.core.files.geotiff import RasterWindows, read_band, write_geotiff
    from darts_postprocessing.core.files.grids import grid_of
    from darts_postprocessing.core.files.tags import read_tags, write_metadata

    inputs, grid = tmp_path / "inputs", (0, 10, 0, 400, 0, -10)
    inputs.mkdir()
    binary = np.zeros((40, 40), np.uint8)
    binary[5:15, 5:15] = binary[20:30, 22:35] = 1
    gpkg, tif = str(inputs / "objects.gpkg"), str(inputs / "objects.tif")
    polygonize(binary, grid, "EPSG:32606", gpkg)
    write_metadata(gpkg, {"DARTS_test": "1"})
    write_geotiff(tif, binary, grid, "EPSG:32606", tags={"DARTS_test": "1"})
    before = digest(inputs)

    def read_kept(path):
        """Windows read by the threads of a KeptRasters (as block-wise runs read their inputs)."""
        import concurrent.futures

        from darts_postprocessing.core.files.geotiff import KeptRasters

        windows = RasterWindows(path)
        with KeptRasters() as kept, concurrent.futures.ThreadPoolExecutor(2, initializer=kept.start_thread) as pool:
            read = list(pool.map(lambda rows: windows[rows, 0:40], [slice(top, top + 10) for top in range(0, 40, 10)]))
        assert np.array_equal(np.concatenate(read), binary)

    def only_open(path, kind):
        with open_read_only(path, kind) as dataset:
            assert dataset.GetDriver().ShortName in ("GPKG", "GTiff")

    readers = {
        "open_read_only gpkg": lambda: only_open(gpkg, "vector"),
        "open_read_only tif": lambda: only_open(tif, "raster"),
        "read_tags gpkg": lambda: read_tags(gpkg),
        "read_tags tif": lambda: read_tags(tif),
        "is_vector": lambda: is_vector(gpkg),
        "polygons_without_crs": lambda: polygons_without_crs(gpkg),
        "exclusion_mask gpkg": lambda: exclusion_mask(gpkg, binary.shape, grid, "EPSG:32606"),
        "exclusion_mask tif": lambda: exclusion_mask(tif, binary.shape, grid, "EPSG:32606"),
        "read_layer": lambda: read_layer(gpkg, "objects"),
        "replace_layer": lambda: replace_layer(gpkg, str(tmp_path / "copy.gpkg"), gpkg, "objects"),
        "read_band": lambda: read_band(tif, "mask"),
        "grid_of": lambda: grid_of(tif, "mask"),
        "RasterWindows": lambda: RasterWindows(tif)[0:10, 0:10],
        "RasterWindows kept open": lambda: read_kept(tif),
    }
    if geoparquet_support()[0]:
        readers["write_geoparquet"] = lambda: write_geoparquet(gpkg, "objects", str(tmp_path / "objects.parquet"))
    for name, read in readers.items():
        read()
        assert digest(inputs) == before, name


def test_kept_rasters_serve_the_windows_and_give_gdal_its_cache_back(tmp_path):
    """Threads of a KeptRasters read the same windows as new handles, from one dataset each;
    GDAL's cache is held at KeptRasters.CACHE_BYTES inside and given its size back after."""
    gdal = pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    import concurrent.futures

    from darts_postprocessing.core.files.geotiff import KeptRasters, RasterWindows, write_geotiff

    values = np.random.default_rng(3).integers(0, 3, (600, 500)).astype(np.uint8)
    path = str(tmp_path / "quality.tif")
    write_geotiff(path, values, (0, 10, 0, 6000, 0, -10), "EPSG:32606")
    windows = RasterWindows(path, what="QUALITY_MASK")
    cut = [(slice(top, top + 150), slice(left, left + 125)) for top in range(0, 600, 150) for left in range(0, 500, 125)]
    cache = gdal.GetCacheMax()
    with KeptRasters() as kept:
        assert gdal.GetCacheMax() == min(cache, KeptRasters.CACHE_BYTES)
        with concurrent.futures.ThreadPoolExecutor(2, initializer=kept.start_thread) as pool:
            read = list(pool.map(lambda window: windows[window], cut * 3))
        assert 1 <= kept.datasets_open <= 2  # one dataset a thread, whatever the windows read
    assert gdal.GetCacheMax() == cache and kept.datasets_open == 0
    for window, got in zip(cut * 3, read):
        assert np.array_equal(got, values[window])


# -- 9. all outputs together or none, also when replacing one fails -----------------------

def old_outputs(folder, names):
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text(f"old {name}")


def test_commit_puts_everything_back_when_one_replacement_fails(tmp_path):
    from darts_postprocessing.core.files.atomic import AtomicFiles

    old_outputs(tmp_path, ["a.tif", "b.tif"])
    files = AtomicFiles()
    for name in ["a.tif", "b.tif", "c.tif"]:
        with open(files.reserve(str(tmp_path / name)), "w") as handle:
            handle.write(f"new {name}")
    files.reserve(str(tmp_path / "d.tif"))  # never written: moving it in, the last move, fails
    with pytest.raises(OSError, match="d.tif"):
        files.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.tif"]
    assert [(tmp_path / name).read_text() for name in ["a.tif", "b.tif"]] == ["old a.tif", "old b.tif"]


def test_a_target_that_is_a_folder_changes_nothing(tmp_path):
    from darts_postprocessing.core.files.atomic import AtomicFiles

    old_outputs(tmp_path, ["a.tif"])
    (tmp_path / "b.tif").mkdir()
    (tmp_path / "b.tif" / "inside").write_text("kept")
    files = AtomicFiles()
    for name in ["a.tif", "b.tif"]:
        with open(files.reserve(str(tmp_path / name)), "w") as handle:
            handle.write("new")
    with pytest.raises(OSError, match=r"b\.tif: it is a folder"):
        files.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "b.tif"] and (tmp_path / "a.tif").read_text() == "old a.tif"
    assert (tmp_path / "b.tif" / "inside").read_text() == "kept"


# -- 10. what a killed run left behind ----------------------------------------------------

KILLED_WHILE_WRITING = """
import os, signal, sys
from darts_postprocessing.core.files.atomic import AtomicFiles
files = AtomicFiles()
for name in sys.argv[1:]:
    with open(files.reserve(name), "w") as handle:
        handle.write("half")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_next_run_removes_what_a_killed_run_left(tmp_path, package_parent):
    from darts_postprocessing.core.files.atomic import AtomicFiles

    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(tmp_path / "a.tif"),
                             str(tmp_path / "b.gpkg")], env=environment)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2 and all(".partial" in name for name in left)  # no final name: nothing committed
    running = AtomicFiles()  # a live run's temporary file is left alone
    with open(running.reserve(str(tmp_path / "c.tif")), "w") as handle:
        handle.write("being written")
    with AtomicFiles() as files:
        with open(files.reserve(str(tmp_path / "a.tif")), "w") as handle:
            handle.write("new")
    remaining = sorted(os.listdir(tmp_path))
    assert remaining[1] == "a.tif" and remaining[0].startswith(".c.") and len(remaining) == 2
    running.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "c.tif"]


def test_a_killed_commit_gets_the_old_file_back(tmp_path):
    """A run killed after moving an old file aside, before moving the new one in: the next run
    in that folder puts the old file back rather than leaving neither."""
    from darts_postprocessing.core.files.atomic import AtomicFiles

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that no longer exists
    (tmp_path / "a.tif").write_text("old a.tif")
    temporary = os.path.basename(AtomicFiles().reserve(str(tmp_path / "a.tif")))  # .a.<host>-<pid>-<id>.partial.tif
    tag = temporary[len(".a"):-len(".partial.tif")].replace(f"-{os.getpid()}-", f"-{pid}-")
    os.replace(tmp_path / "a.tif", tmp_path / f".a.tif{tag}.backup")  # as the dead run's commit did
    AtomicFiles().reserve(str(tmp_path / "other.tif"))
    assert sorted(os.listdir(tmp_path)) == ["a.tif"] and (tmp_path / "a.tif").read_text() == "old a.tif"


def test_gdal_writing_in_threads_keeps_each_writes_close_errors_apart():
    """Block-wise runs write from several threads: a close error belongs to the write of its
    own thread, and the hook that catches them is never swapped out of order."""
    import threading

    pytest.importorskip("osgeo")
    from darts_postprocessing.core.files.gdal import gdal_writing

    class FailsOnClose:
        def __del__(self):
            raise RuntimeError("disk full while closing")

    inside, release, left, results = threading.Event(), threading.Event(), threading.Event(), {}

    def other_writer():  # starts first and finishes while the main thread's write is open
        try:
            with gdal_writing("/tmp/other.tif"):
                inside.set()
                release.wait(10)
            results["other"] = "ok"
        except OSError as error:
            results["other"] = str(error)
        left.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    inside.wait(10)
    with pytest.raises(OSError, match="could not write /tmp/failing.tif: disk full while closing"):
        with gdal_writing("/tmp/failing.tif"):
            release.set()
            left.wait(10)
            FailsOnClose()  # dropped at once: its destructor raises, as GDAL 3.6's do
    thread.join()
    assert results["other"] == "ok"


def test_discarded_outputs_leave_no_folder_they_made(tmp_path):
    """Issue 20: a canceled or failed run left the empty folders made for its outputs
    (processtiles' OUTPUT_TILES and tiles/<id>/); folders that were there, or that hold
    something else by then, stay. Committed outputs keep theirs."""
    from darts_postprocessing.core.files.atomic import AtomicFiles

    (tmp_path / "there").mkdir()
    files = AtomicFiles()
    for target in ("there/a.tif", "new/deeper/b.tif", "new/c.tif", "busy/d.tif"):
        with open(files.reserve(str(tmp_path / target)), "w") as handle:
            handle.write("x")
    (tmp_path / "busy" / "someone else's").write_text("y")
    files.discard()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["busy", "someone else's", "there"]
    with AtomicFiles() as files:
        with open(files.reserve(str(tmp_path / "kept" / "e.tif")), "w") as handle:
            handle.write("x")
    assert (tmp_path / "kept" / "e.tif").read_text() == "x"
