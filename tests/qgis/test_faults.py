"""Fault injection through qgis_process, over all seven algorithms (and prepareexport's
block-wise path): runs killed at random moments (and processtiles' worker processes), a full
disk (RLIMIT_FSIZE), places that cannot be written, damaged inputs of every kind the
algorithms read, and Ctrl-C. Every case checks the promises of docs/reliability.md:

1. the inputs stay byte for byte as they were, and nothing appears beside them;
2. no file under an output's final name unless the run succeeded (then all of them, whole);
3. no hidden temporary, backup or SQLite journal left after the next run into the folders;
4. a failure is one clear line naming the user's file (never a hidden one), no traceback;
5. a non-zero exit for a failure and for cancel.

Random choices (when to kill, file size limits, garbage bytes) come from SEED, so a failing
case reruns the same way. Damaged inputs go through processing.run in this process for the
whole matrix (algorithm x input x damage: fast), and through qgis_process once per damage.
"""

import contextlib
import ctypes
import dataclasses
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from osgeo import gdal
from qgis.core import QgsProcessingException
from qgis_cli import run_text
from reading import HIDDEN, leftovers, open_read_only, pixels
from feedback import Log
from writing import write_raster

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import sample_region as scene  # noqa: E402

gdal.UseExceptions()
SEED = 10
SIZE = 300  # pixels per side of the test rasters


@dataclasses.dataclass(frozen=True)
class Config:
    """One way to run an algorithm: its inputs (parameter -> file of the `data` fixture), its
    outputs (parameter -> name under the output folder) and other parameters."""

    algorithm: str
    inputs: dict
    outputs: dict
    extra: dict = dataclasses.field(default_factory=dict)


PREPARE = dict(inputs={"PROBABILITIES": "probabilities.tif", "QUALITY_MASK": "quality_data_mask.tif",
                       "SUBSET_PROBABILITIES": "member.tif"},
               outputs={"OUTPUT_BINARIZED": "binarized.tif", "OUTPUT_EXTENT": "extent.tif",
                        "OUTPUT_PROBABILITIES": "masked.tif", "OUTPUT_POLYGONS": "polygons.gpkg",
                        "OUTPUT_REPORT": "report.html"})
CONFIGS = {
    "prepareexport": Config("prepareexport", **PREPARE),
    "prepareexport-blocks": Config("prepareexport", **PREPARE, extra={"MEMORY_LIMIT": 1}),
    "erodemask": Config("erodemask", {"MASK": "quality_data_mask.tif"}, {"OUTPUT": "eroded.tif"}, {"SIZE": 3}),
    "binarize": Config("binarize", {"PROBABILITIES": "probabilities.tif", "MASK": "extent.tif"},
                       {"OUTPUT": "objects.tif"}),
    "polygonize": Config("polygonize", {"BINARIZED": "binarized.tif", "PROBABILITIES": "probabilities.tif"},
                         {"OUTPUT": "polygons.gpkg"}),
    "exporttile": Config("exporttile", {"PROBABILITIES": "probabilities.tif", "BINARIZED": "binarized.tif",
                                        "EXTENT": "extent.tif"}, {"OUTPUT_FOLDER": "tile"}),
    # An ensemble member's files too (and its thumbnail and darts_inference.json), block by block.
    "exporttile-ensemble-blocks": Config("exporttile", {
        "PROBABILITIES": "probabilities.tif", "BINARIZED": "binarized.tif", "EXTENT": "extent.tif",
        "SUBSET_PROBABILITIES": "member.tif", "SUBSET_BINARIZED": "binarized-member.tif"}, {"OUTPUT_FOLDER": "tile"},
        {"MEMORY_LIMIT": 1}),
    "qualitymask": Config("qualitymask", {"INPUT": "scl.tif"}, {"OUTPUT": "quality.tif"}, {"SOURCE": "scl"}),
    "processtiles": Config("processtiles", {"INPUT_FOLDER": "tiles"},
                           {"OUTPUT": "map.gpkg", "OUTPUT_TILES": "tiles", "OUTPUT_REPORT": "report.html"},
                           {"WORKERS": 2}),
}


# -- the inputs ---------------------------------------------------------------------------

def write_like(template, path, array, nodata=None):
    """A GeoTIFF of `array` ((y, x) or (bands, y, x)) on the grid of the raster `template`."""
    with open_read_only(template) as source:
        grid, crs = source.GetGeoTransform(), source.GetProjection()
    write_raster(path, array, grid, crs, nodata)
    return str(path)


def read(path):
    return pixels(path)


def digest(folder):
    """{path below folder: sha256} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def inputs(folder, size):
    """The inputs of every config in `folder` (a DARTS-like tile, an ensemble member, a
    binarized raster and extent made from it, the member's binarized raster, an SCL band, a folder of four tiles, one of
    them with a DARTS extent instead of a quality mask), and their digest."""
    from rasters import expected_on_sample
    from sample_tile import write_sample_tile

    probabilities, quality = write_sample_tile(str(folder), size=size, seed=1)
    write_sample_tile(str(folder / "member"), size=size, seed=2)
    os.replace(folder / "member" / "probabilities.tif", folder / "member.tif")
    shutil.rmtree(folder / "member")
    result = expected_on_sample({"probabilities": probabilities, "quality": quality})
    write_like(probabilities, folder / "binarized.tif", result["binarized_segmentation"].astype(np.uint8))
    write_like(probabilities, folder / "extent.tif", result["extent"].astype(np.uint8))
    member = expected_on_sample({"probabilities": str(folder / "member.tif"), "quality": quality})
    write_like(probabilities, folder / "binarized-member.tif", member["binarized_segmentation"].astype(np.uint8))
    write_like(probabilities, folder / "scl.tif", np.random.default_rng(SEED).integers(0, 12, (size, size), np.uint8))
    tiles = scene.region(str(folder / "tiles"))["tiles"]
    os.remove(folder / "tiles" / "tile_D" / "quality_data_mask.tif")
    scene.draw_tile(dataclasses.replace(tiles["tile_D"], mask="extent"), [], str(folder / "tiles"))
    return {"folder": folder, "digest": digest(folder)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return inputs(tmp_path_factory.mktemp("faults") / "inputs", SIZE)


def unchanged(data):
    """Promise 1: every input as it was, no file added beside them."""
    assert digest(data["folder"]) == data["digest"]


# -- running qgis_process ------------------------------------------------------------------

def arguments(config, data, out, **override):
    """qgis_process's arguments for `config` reading `data` and writing into `out`."""
    parameters = {**{name: data["folder"] / file for name, file in config.inputs.items()},
                  **{name: out / file for name, file in config.outputs.items()}, **config.extra, **override}
    return [f"darts:{config.algorithm}", "--", *[f"{name}={value}" for name, value in parameters.items()]]


def start(profile, args, log, preexec_fn=None):
    """qgis_process running `args`, its output going to the file `log` unbuffered (as it
    happens: what it printed is how the tests find the moments to stop a run)."""
    unbuffered = ["stdbuf", "-o0", "-e0"] if shutil.which("stdbuf") else []
    return subprocess.Popen([*unbuffered, "qgis_process", "run", *args], env=profile, stdout=log,
                            stderr=subprocess.STDOUT, preexec_fn=preexec_fn)


def body(text):
    """What a run printed after its list of inputs: progress and messages."""
    return text.split("\n\n\n", 1)[1] if "\n\n\n" in text else ""


def final_files(out):
    """Files under `out` under a name the user sees (not hidden temporaries or backups)."""
    return sorted(os.path.relpath(os.path.join(root, name), out) for root, _, names in os.walk(out)
                  for name in names if not HIDDEN.search(name))


def complete(out, expected, like=None):
    """Promise 2 for a run that succeeded: all outputs there, whole: GDAL opens them, and (given
    the folder `like` of a normal run) rasters hold its pixels, GeoPackages its features."""
    assert final_files(out) == expected
    for name in expected:
        if name.endswith((".tif", ".gpkg")):
            with open_read_only(out / name) as dataset:
                if like and name.endswith(".tif"):
                    np.testing.assert_array_equal(dataset.ReadAsArray(), read(like / name), err_msg=name)
                elif like:
                    with open_read_only(like / name) as other:
                        assert ([dataset.GetLayer(i).GetFeatureCount() for i in range(dataset.GetLayerCount())]
                                == [other.GetLayer(i).GetFeatureCount() for i in range(other.GetLayerCount())]), name


def failed_clearly(returncode, text, *words):
    """Promises 4 and 5: a non-zero exit, one error line (naming `words`), no traceback, no
    hidden file name. Returns the line."""
    assert returncode != 0, text
    assert "Traceback" not in text, text
    errors = {line.strip() for line in text.splitlines() if line.startswith("ERROR:")}
    assert len(errors) == 1, text
    line = errors.pop()
    assert not HIDDEN.search(line) and not line.endswith(":"), line  # no hidden name, no empty reason
    for word in words:
        assert word in line, (word, line)
    return line


@dataclasses.dataclass
class Reference:
    seconds: float  # the whole run
    files: list  # final files under the output folder
    sizes: dict  # final file -> bytes
    moments: list  # (seconds before the run ended, length of its body then): when it printed something
    folder: Path

    @property
    def running(self) -> float:
        """Seconds from the algorithm's first message to its results (QGIS starts before, and
        ends after)."""
        return self.moments[0][0] - self.moments[-1][0]


@pytest.fixture(scope="module")
def reference(profile, data, tmp_path_factory):
    """reference(name): a normal run of config `name`, watched as it goes."""
    cache = {}

    def get(name):
        source = data
        if (name, str(source["folder"])) not in cache:
            out = tmp_path_factory.mktemp(f"reference-{name}")
            log_path = out.parent / f"{out.name}.log"
            with open(log_path, "w") as log:
                began = time.monotonic()
                process, printed = start(profile, arguments(CONFIGS[name], source, out), log), []
                while process.poll() is None:
                    length = len(body(log_path.read_text()))
                    if length and (not printed or printed[-1][1] != length):
                        printed.append((time.monotonic(), length))
                    time.sleep(0.002)
                ended = time.monotonic()
            text = log_path.read_text()
            assert process.returncode == 0, text
            files = final_files(out)
            assert files and leftovers(out) == [], (files, leftovers(out))
            cache[name, str(source["folder"])] = Reference(
                ended - began, files, {f: (out / f).stat().st_size for f in files},
                [(ended - moment, length) for moment, length in printed], out)
        return cache[name, str(source["folder"])]

    return get


def wait_for(condition, process, timeout=60):
    """Wait until `condition()`; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.002)
    return True


# -- 1. killed at random moments -------------------------------------------------------------

def workers_of(process):
    """processtiles' worker processes (and multiprocessing's resource tracker) of `process`."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if "multiprocessing" in " ".join(child.cmdline()):
                found.append(child)
    return found


def kill(process, when):
    """SIGKILL `process` once `when()` is true; its worker processes are left to end on their
    own (as after a crash), and awaited. Whether it had finished before."""
    reached = wait_for(when, process)
    workers = workers_of(process)
    if reached:
        process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"worker processes still running after their QGIS was killed: {alive}"
    return not reached and process.returncode == 0


def after(event, seconds):
    """A moment `seconds` after `event()` first became true."""
    seen = []

    def when():
        if not seen and event():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() >= seen[0] + seconds

    return when


def identities(out):
    """{final file: inode}: a file moved into place is a new inode, one left alone keeps it."""
    return {name: os.stat(out / name).st_ino for name in final_files(out)}


def check_killed(out, finished, normal, before):
    """Promise 2 after a kill: the outputs that were there before (`before`: identities) are
    all still there, or the run had committed and all are new and whole; in the moment of the
    commit itself a backup is left instead, which the next run puts back (docs: Limits)."""
    now = identities(out)
    if finished or (now and all(before.get(name) != inode for name, inode in now.items())):
        complete(out, normal.files, normal.folder)  # it had committed: killed on its way out
    elif not any(".backup" in name for name in leftovers(out)):
        assert now == before, (now, before)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_killed_run_leaves_nothing_and_the_next_run_cleans_up(profile, data, reference, name, tmp_path):
    """Killed at a random moment of the algorithm's run (after QGIS started) into an empty
    folder, then while writing over the outputs of an earlier run, then a normal run into the
    same folder."""
    config, normal = CONFIGS[name], reference(name)
    rng = random.Random(f"{SEED}-kill-{name}")
    out = tmp_path / "out"
    args = arguments(config, data, out)
    with open(tmp_path / "log", "w") as log:
        started = lambda: body((tmp_path / "log").read_text())  # noqa: E731
        finished = kill(start(profile, args, log), after(started, rng.uniform(0, normal.running)))
    check_killed(out, finished, normal, {})
    unchanged(data)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(normal.folder, out)
    before = identities(out)
    with open(tmp_path / "log", "w") as log:  # while writing: once a file is made or changed
        finished = kill(start(profile, args, log), after(lambda: leftovers(out) or identities(out) != before,
                                                         rng.uniform(0, 0.01)))
    check_killed(out, finished, normal, before)
    unchanged(data)
    returncode, text = run_text(profile, *args)
    assert returncode == 0, text
    complete(out, normal.files, normal.folder)
    assert leftovers(out) == []
    unchanged(data)


def spawned(process):
    """processtiles' worker processes of `process` (not multiprocessing's resource tracker)."""
    return sorted((worker for worker in workers_of(process) if "spawn_main" in " ".join(worker.cmdline())),
                  key=lambda worker: worker.pid)


def test_a_killed_worker_process_costs_no_tile(profile, data, tmp_path):
    """processtiles: a worker process killed while it processes a tile: the unfinished tiles
    run again in new workers, every tile is in the map; nothing stray."""
    rng = random.Random(f"{SEED}-worker")
    inputs = tmp_path / "inputs"
    for copy in "abc":  # 12 tiles: the workers are busy for a while
        shutil.copytree(data["folder"] / "tiles", inputs / copy)
    out = tmp_path / "out"
    with open(tmp_path / "log", "w") as log:
        process = start(profile, arguments(CONFIGS["processtiles"], data, out, INPUT_FOLDER=inputs), log)
        assert wait_for(lambda: spawned(process), process)
        time.sleep(rng.uniform(0, 0.3))
        workers = spawned(process)
        assert workers, "the workers ended before one could be killed"
        rng.choice(workers).kill()
        process.wait(timeout=120)
    text = (tmp_path / "log").read_text()
    assert process.returncode == 0, text
    assert "12 tiles processed, 0 skipped" in text and not re.search(r"Tile \S+ skipped", text), text
    assert "map.gpkg" in final_files(out)
    assert leftovers(out) == []
    unchanged(data)


# -- 2. a full disk ------------------------------------------------------------------------

def file_size_limit(size_bytes):
    """preexec_fn: no file may grow beyond `size_bytes`; writing beyond fails with EFBIG (as on
    a full disk) instead of killing the process with SIGXFSZ."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
    return apply


@pytest.mark.parametrize("name,draw", [(name, draw) for name in CONFIGS for draw in range(2)])
def test_a_full_disk_fails_clearly_and_writes_nothing(profile, data, reference, name, draw, tmp_path):
    """Files may not grow beyond a random share of the largest output: the run fails with one
    line naming an output the user asked for, and writes nothing."""
    normal = reference(name)
    share = random.Random(f"{SEED}-disk-{name}-{draw}").uniform(0.05, 0.9)
    full_disk(profile, data, normal, name, int(share * max(normal.sizes.values())), tmp_path)


@pytest.mark.parametrize("name", [name for name in CONFIGS if name != "polygonize"])
def test_a_full_disk_while_writing_a_small_raster_fails_clearly(profile, data, reference, name, tmp_path):
    """The same with the limit at a random share of the smallest GeoTIFF output: small
    compressed rasters are the ones whose failed write GDAL 3.10 / libtiff 4.7 only print."""
    normal = reference(name)
    smallest = min(size for file, size in normal.sizes.items() if file.endswith(".tif"))
    share = random.Random(f"{SEED}-small-{name}").uniform(0.05, 0.9)
    full_disk(profile, data, normal, name, int(share * smallest), tmp_path)


def full_disk(profile, data, normal, name, limit, tmp_path):
    """Run config `name` with no file allowed beyond `limit` bytes: it fails with one line
    naming an output larger than that (in a normal run), and writes nothing."""
    out = tmp_path / "out"
    returncode, text = run_text(profile, *arguments(CONFIGS[name], data, out), preexec_fn=file_size_limit(limit))
    too_big = [os.path.basename(file) for file, size in normal.sizes.items() if size > limit]
    line = failed_clearly(returncode, text)
    assert any(file in line for file in too_big), (limit, too_big, line)
    assert final_files(out) == [] and leftovers(out) == []
    unchanged(data)


# -- 3. places that cannot be written ------------------------------------------------------

def without_override():
    """preexec_fn: file permissions apply even to root (drops CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the capabilities that qgis_process will have)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


UNWRITABLE = [(name, "read-only folder", next(iter(CONFIGS[name].outputs))) for name in CONFIGS
              if name != "prepareexport-blocks"] + [
    ("erodemask", "parent is a file", "OUTPUT"), ("exporttile", "parent is a file", "OUTPUT_FOLDER"),
    ("processtiles", "parent is a file", "OUTPUT_TILES"), ("binarize", "/proc", "OUTPUT"),
    ("polygonize", "/proc", "OUTPUT"), ("prepareexport", "/proc", "OUTPUT_REPORT"),
    ("prepareexport", "an input", "OUTPUT_BINARIZED"), ("prepareexport-blocks", "an input", "OUTPUT_PROBABILITIES"),
    ("binarize", "an input", "OUTPUT"), ("qualitymask", "an input", "OUTPUT"),
    ("exporttile", "an input", "OUTPUT_FOLDER"), ("processtiles", "an input", "OUTPUT_TILES"),
]
INPUT_AS_OUTPUT = {"prepareexport": "probabilities.tif", "prepareexport-blocks": "member.tif", "binarize": "extent.tif",
                   "qualitymask": "scl.tif", "exporttile": ".", "processtiles": "tiles"}


@pytest.mark.parametrize("name,place,parameter", UNWRITABLE)
def test_a_place_that_cannot_be_written_fails_clearly(profile, data, name, place, parameter, tmp_path):
    config = CONFIGS[name]
    out = tmp_path / "out"
    out.mkdir()
    target = out / config.outputs[parameter]
    options = {}
    if place == "read-only folder":
        out.chmod(0o555)
        options["preexec_fn"] = without_override
    elif place == "parent is a file":
        (tmp_path / "a-file").write_text("not a folder")
        target = tmp_path / "a-file" / config.outputs[parameter]
    elif place == "/proc":
        target = Path("/proc") / config.outputs[parameter]
    else:
        target = (data["folder"] / INPUT_AS_OUTPUT[name]).resolve()
    returncode, text = run_text(profile, *arguments(config, data, out, **{parameter: target}), **options)
    line = failed_clearly(returncode, text)
    assert target.name in line or str(target) in line, line
    out.chmod(0o755)
    assert final_files(out) == [] and leftovers(out) == []
    unchanged(data)


# -- 4. damaged inputs ------------------------------------------------------------------------

DAMAGES = ["truncated", "random bytes", "empty", "VRT of a missing file", "VRT with bad XML", "two bands", "1 x 1",
           "0 x 0", "NaN only"]
# Damages after which the file is still a raster that means something: the run may succeed.
MEANINGFUL = {"1 x 1", "NaN only"}
TILE_FILES = {"tile probabilities": "probabilities.tif", "tile mask": "extent.tif"}  # of tile_X, a copy of tile_D


def vrt(path, width, height, source, grid=None):
    """A VRT of `width` x `height` pixels reading band 1 of `source` (which need not exist)."""
    geotransform = f"<GeoTransform>{', '.join(map(str, grid))}</GeoTransform>" if grid else ""
    Path(path).write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">{geotransform}'
                          f'<VRTRasterBand dataType="Byte" band="1"><SimpleSource><SourceFilename relativeToVRT="1">'
                          f'{source}</SourceFilename><SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>'
                          f'</VRTDataset>')


def damage(kind, valid, path, rng):
    """Write at `path` the raster file `valid` damaged in the way `kind` says."""
    array = read(valid)
    with open_read_only(valid) as source:
        width, height, grid = source.RasterXSize, source.RasterYSize, source.GetGeoTransform()
    if kind == "truncated":
        content = Path(valid).read_bytes()
        Path(path).write_bytes(content[: len(content) // 2])
    elif kind == "random bytes":
        Path(path).write_bytes(rng.randbytes(4096))
    elif kind == "empty":
        Path(path).write_bytes(b"")
    elif kind == "VRT of a missing file":
        vrt(path, width, height, "missing.tif", grid)
    elif kind == "VRT with bad XML":
        Path(path).write_text('<VRTDataset rasterXSize="10" rasterYSize="10"><VRTRasterBand dataType="Byte" band="1">')
    elif kind == "two bands":
        write_like(valid, path, np.stack([array, array]))
    elif kind == "1 x 1":
        write_like(valid, path, array[:1, :1])
    elif kind == "0 x 0":
        vrt(path, 0, 0, os.path.basename(valid))
    else:
        write_like(valid, path, np.full(array.shape, np.nan, np.float32))


def damaged_case(name, target, kind, data, folder):
    """Parameters of config `name` reading a damaged copy (in `folder`) of its input `target`
    (for processtiles: a tile folder with a good tile and tile_X, damaged), writing into
    folder/out."""
    config, rng = CONFIGS[name], random.Random(f"{SEED}-damage-{name}-{target}-{kind}")
    out, inputs = folder / "out", folder / "inputs"
    parameters = {**{parameter: str(data["folder"] / file) for parameter, file in config.inputs.items()},
                  **{parameter: str(out / file) for parameter, file in config.outputs.items()}, **config.extra}
    if name == "processtiles":
        for tile in ("tile_D", "tile_X"):
            shutil.copytree(data["folder"] / "tiles" / "tile_D", inputs / tile)
        os.remove(inputs / "tile_X" / TILE_FILES[target])
        damage(kind, data["folder"] / "tiles" / "tile_D" / TILE_FILES[target], inputs / "tile_X" / TILE_FILES[target],
               rng)
        parameters["INPUT_FOLDER"] = str(inputs)
    else:
        inputs.mkdir()
        damage(kind, data["folder"] / config.inputs[target], inputs / config.inputs[target], rng)
        parameters[target] = str(inputs / config.inputs[target])
    return parameters


def check_damaged(name, target, kind, failure, text, out, skipped=None):
    """The promises for a run on a damaged input: one line naming the input, nothing written;
    or (for a damage that leaves a meaningful raster) success with whole outputs. For
    processtiles the damaged tile is skipped and named instead (failing with STOP_ON_ERROR)."""
    assert "Traceback" not in text and "There were errors executing" not in text, text
    if failure is None:
        assert kind in MEANINGFUL or name == "processtiles", f"{kind} was accepted: {text}"
        assert final_files(out) and leftovers(out) == [], (final_files(out), leftovers(out))
        for file in final_files(out):
            if file.endswith((".tif", ".gpkg")):
                with open_read_only(out / file) as dataset:
                    assert dataset is not None, file
        if name == "processtiles" and kind not in MEANINGFUL:
            assert skipped == 1 and re.search(r"Tile tile_X skipped: .*tile_X", text), text
        return
    assert "\n" not in failure.strip() and not HIDDEN.search(failure), failure
    assert ("tile_X" if name == "processtiles" else target) in failure, failure
    assert final_files(out) == [] and leftovers(out) == [], (final_files(out), leftovers(out))


def run_here(algorithm, parameters):
    """processing.run in this QGIS: (results or None, the one-line failure or None, log text)."""
    from qgis import processing

    log = Log(errors=True, prefixes=True)
    try:
        results = processing.run(f"darts:{algorithm}", parameters, feedback=log)
    except QgsProcessingException as error:
        return None, str(error), "\n".join(log.lines + [str(error)])
    return results, None, "\n".join(log.lines)


INPUTS = [(name, target) for name, config in CONFIGS.items() if name != "processtiles" for target in config.inputs]
INPUTS += [("processtiles", target) for target in TILE_FILES]


@pytest.mark.parametrize("kind", DAMAGES)
@pytest.mark.parametrize("name,target", INPUTS)
def test_a_damaged_input_is_one_clear_line(provider, data, name, target, kind, tmp_path):
    """Every raster input of every algorithm, damaged in every way (processing.run here)."""
    parameters = damaged_case(name, target, kind, data, tmp_path)
    if name == "processtiles":
        parameters["WORKERS"] = 1
    before = digest(tmp_path / "inputs")
    results, failure, text = run_here(CONFIGS[name].algorithm, parameters)
    check_damaged(name, target, kind, failure, text, tmp_path / "out", results and results.get("TILES_SKIPPED"))
    if name == "processtiles" and results and results["TILES_SKIPPED"]:
        shutil.rmtree(tmp_path / "out")
        _, failure, text = run_here("processtiles", {**parameters, "STOP_ON_ERROR": True})
        assert failure is not None, text
        check_damaged(name, target, kind, failure, text, tmp_path / "out")
    assert digest(tmp_path / "inputs") == before
    unchanged(data)


@pytest.mark.parametrize("kind", DAMAGES)
def test_a_damaged_input_through_qgis_process(profile, data, kind, tmp_path):
    """Each damage once through qgis_process (exit code, the printed line), on an input of an
    algorithm taken in turn; processtiles with its worker processes."""
    name, target = INPUTS[DAMAGES.index(kind) * 5 % len(INPUTS)]
    parameters = damaged_case(name, target, kind, data, tmp_path)
    before = digest(tmp_path / "inputs")
    returncode, text = run_text(profile, f"darts:{CONFIGS[name].algorithm}", "--",
                                *[f"{key}={value}" for key, value in parameters.items()])
    failure = failed_clearly(returncode, text) if returncode else None
    skipped = re.search(r"TILES_SKIPPED:\s*(\d+)", text)
    check_damaged(name, target, kind, failure, text, tmp_path / "out", skipped and int(skipped[1]))
    assert digest(tmp_path / "inputs") == before
    unchanged(data)


VECTOR_OUTPUTS = [("polygonize", "OUTPUT"), ("prepareexport", "OUTPUT_POLYGONS"), ("processtiles", "OUTPUT")]


@pytest.mark.parametrize("name,parameter", VECTOR_OUTPUTS)
@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + bytes(200), b"not a geopackage at all"])
def test_a_geopackage_to_write_into_that_is_not_one(provider, data, name, parameter, content, tmp_path):
    """QGIS's "Save to GeoPackage" into an existing file that is not a GeoPackage: one line
    naming it, the file left as it was."""
    config = CONFIGS[name]
    out = tmp_path / "out"
    out.mkdir()
    (out / "store.gpkg").write_bytes(content)
    parameters = {**{key: str(data["folder"] / file) for key, file in config.inputs.items()},
                  **{key: str(out / file) for key, file in config.outputs.items()}, **config.extra,
                  parameter: f"ogr:dbname='{out / 'store.gpkg'}' table=\"slumps\" (geom)", "WORKERS": 1}
    _, failure, text = run_here(config.algorithm, parameters)
    assert failure is not None and "store.gpkg" in failure and "\n" not in failure, text
    assert "Traceback" not in text and not HIDDEN.search(failure), text
    assert final_files(out) == ["store.gpkg"] and leftovers(out) == []
    assert (out / "store.gpkg").read_bytes() == content
    unchanged(data)


# -- 5. Ctrl-C ---------------------------------------------------------------------------------

def interrupt_at(process, log_path, moment, step=0.0003):
    """SIGINT to `process` when it has printed `moment` characters after its inputs. Once QGIS
    printed its inputs the run goes in steps of `step` seconds (SIGSTOP, SIGCONT), so it stands
    still at the moment, however fast the algorithm and however busy the machine."""
    assert wait_for(lambda: "\n\n\n" in log_path.read_text(), process)
    process.send_signal(signal.SIGSTOP)
    while len(body(log_path.read_text())) < moment and process.poll() is None:
        process.send_signal(signal.SIGCONT)
        time.sleep(step)
        process.send_signal(signal.SIGSTOP)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_ctrl_c_at_a_random_moment_writes_nothing(profile, data, reference, name, tmp_path):
    """SIGINT at the start of the algorithm or at a random one of the moments a normal run
    printed something, at least 0.2 s before its end: a non-zero exit, one line, no file
    written, not even a temporary one."""
    normal = reference(name)
    # Not in a run's last 0.2 s: qgis_process notices SIGINT only when Qt handles its events (at
    # each progress report), so a Ctrl-C after a run's last report may let it finish (exit 0,
    # whole outputs); docs/reliability.md, Limits.
    moments = [length for before, length in normal.moments[:-1] if before >= 0.2]
    moment = random.Random(f"{SEED}-cancel-{name}").choice([0] + moments)
    out = tmp_path / "out"
    with open(tmp_path / "log", "w") as log:
        process = start(profile, arguments(CONFIGS[name], data, out), log)
        interrupt_at(process, tmp_path / "log", moment)
        process.wait(timeout=120)
    text = (tmp_path / "log").read_text()
    failed_clearly(process.returncode, text, "Canceled: no output was written.")
    assert final_files(out) == [] and leftovers(out) == []
    unchanged(data)


def test_ctrl_c_during_the_merge_writes_nothing(profile, tmp_path):
    """Issue 20: SIGINT while processtiles merges the objects of a speckled region (one object
    of ~45 000 parts per tile: a merge of seconds). It used to go on (no cancel check in the
    merge, which also hung on these shapes); now: a non-zero exit, one line, no file and no
    folder of the run's outputs."""
    scene.speckled_region(str(tmp_path / "tiles"))
    before = digest(tmp_path / "tiles")
    out = tmp_path / "out"
    args = ["darts:processtiles", "--", f"INPUT_FOLDER={tmp_path / 'tiles'}", "BOUNDARY=clip", "MASK_EROSION_SIZE=0",
            "MIN_OBJECT_SIZE=1", "WORKERS=2", f"OUTPUT={out / 'map.gpkg'}", f"OUTPUT_TILES={out / 'tiles'}",
            f"OUTPUT_REPORT={out / 'report.html'}"]
    with open(tmp_path / "log", "w") as log:
        process = start(profile, args, log)
        try:
            assert wait_for(lambda: "Merging the tiles' objects" in (tmp_path / "log").read_text(), process, 240)
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    text = (tmp_path / "log").read_text()
    failed_clearly(process.returncode, text, "Canceled: no output was written.")
    assert final_files(out) == [] and leftovers(out) == []
    assert not out.exists()  # nor the folders the run made for them
    assert digest(tmp_path / "tiles") == before
