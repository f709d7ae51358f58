"""Silently wrong results that must instead be refused, warned about or failed cleanly, checked
where a user meets them: qgis_process as a subprocess, on real files."""

import gc
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis_cli import qgis_process
from rasters import read
from reading import leftovers, open_read_only
from vectors import features
from writing import write_raster

gdal.UseExceptions()
MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "darts_postprocessing.model3"
TOO_BIG = str(2 ** 31)  # parameterAsInt wraps this to 0


def run(profile, algorithm, **parameters):
    return qgis_process(profile, "run", f"darts:{algorithm}", "--json", "--",
                        *[f"{name}={value}" for name, value in parameters.items()])


def refused(result, *words):
    """The run failed with a one-line message naming `words`, and no Python traceback."""
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)
    return text


def layers(path):
    with open_read_only(path, "vector") as dataset:
        return [dataset.GetLayer(index).GetName() for index in range(dataset.GetLayerCount())]


def written(path):
    """Whether `path` exists and holds data (the writability probe is empty and short-lived)."""
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


# -- 1. integers that QGIS would wrap ------------------------------------------------------

@pytest.mark.parametrize("algorithm,parameter", [
    ("prepareexport", "MIN_OBJECT_SIZE"), ("prepareexport", "MASK_EROSION_SIZE"),
    ("prepareexport", "EDGE_EROSION_SIZE"), ("erodemask", "SIZE"), ("erodemask", "EDGE_SIZE"),
    ("binarize", "MIN_OBJECT_SIZE"),
])
def test_integers_beyond_32_bits_are_refused(profile, sample, tmp_path, algorithm, parameter):
    inputs = {"prepareexport": dict(PROBABILITIES=sample["probabilities"], OUTPUT_BINARIZED=tmp_path / "b.tif",
                                    OUTPUT_EXTENT=tmp_path / "e.tif"),
              "erodemask": dict(MASK=sample["quality"], OUTPUT=tmp_path / "b.tif"),
              "binarize": dict(PROBABILITIES=sample["probabilities"], OUTPUT=tmp_path / "b.tif")}[algorithm]
    refused(run(profile, algorithm, **inputs, **{parameter: TOO_BIG}), parameter)
    assert not (tmp_path / "b.tif").exists()


# -- 2. two outputs of one run in one file --------------------------------------------------

def test_outputs_that_are_one_file_are_refused_before_computing(profile, sample, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.tif").write_bytes(b"an older file, left alone")
    member = write_raster(tmp_path / "m1.tif", read(sample["probabilities"]))
    base = dict(PROBABILITIES=sample["probabilities"], OUTPUT_BINARIZED=out / "b.tif")
    cases = [
        (dict(OUTPUT_EXTENT=out / "." / "b.tif"), ("OUTPUT_BINARIZED", "OUTPUT_EXTENT")),
        (dict(OUTPUT_EXTENT=out / "e.tif", OUTPUT_PROBABILITIES=out / "b.tif"),
         ("OUTPUT_BINARIZED", "OUTPUT_PROBABILITIES")),
        (dict(SUBSET_PROBABILITIES=member, OUTPUT_EXTENT=out / "b-m1.tif"), ("OUTPUT_SUBSET_BINARIZED", "OUTPUT_EXTENT")),
        (dict(OUTPUT_EXTENT=out / "e.tif", OUTPUT_POLYGONS=out / "p.gpkg", OUTPUT_REPORT=out / "p.gpkg"),
         ("OUTPUT_POLYGONS", "OUTPUT_REPORT")),
    ]
    for extra, names in cases:
        text = refused(run(profile, "prepareexport", **base, **extra), *names)
        assert "Reading and checking the rasters" not in text
        assert sorted(os.listdir(out)) == ["b.tif"] and (out / "b.tif").read_bytes() == b"an older file, left alone"


# -- 3. raster outputs are GeoTIFFs --------------------------------------------------------

def test_raster_outputs_must_be_geotiff(profile, sample, tmp_path):
    for algorithm, parameter, name, inputs in [
        ("prepareexport", "OUTPUT_BINARIZED", "b.png", dict(PROBABILITIES=sample["probabilities"],
                                                             OUTPUT_EXTENT=tmp_path / "e.tif")),
        ("prepareexport", "OUTPUT_PROBABILITIES", "p.vrt", dict(PROBABILITIES=sample["probabilities"],
                                                                 OUTPUT_BINARIZED=tmp_path / "b.tif",
                                                                 OUTPUT_EXTENT=tmp_path / "e.tif")),
        ("erodemask", "OUTPUT", "e.gpkg", dict(MASK=sample["quality"])),
        ("binarize", "OUTPUT", "b.jpg", dict(PROBABILITIES=sample["probabilities"])),
    ]:
        refused(run(profile, algorithm, **inputs, **{parameter: tmp_path / name}), parameter, "GeoTIFF", name)
        assert os.listdir(tmp_path) == ["input"]
    written = run(profile, "binarize", PROBABILITIES=sample["probabilities"], OUTPUT=tmp_path / "b.TIFF")
    assert written.returncode == 0, written.stdout + written.stderr
    with open_read_only(tmp_path / "b.TIFF") as dataset:
        assert dataset.GetDriver().ShortName == "GTiff"


# -- 4. float64 probabilities stay float64 --------------------------------------------------

def test_float64_probabilities_are_not_cut_to_float32(profile, tmp_path):
    probabilities = np.full((30, 30), 0.2)
    probabilities[10:15, 10:15] = 0.5 + 1e-9  # float32 rounds it to 0.5: not above the threshold
    path = write_raster(tmp_path / "p64.tif", probabilities)
    binarized = run(profile, "binarize", PROBABILITIES=path, THRESHOLD=0.5, MIN_OBJECT_SIZE=1, OUTPUT=tmp_path / "b.tif")
    assert binarized.returncode == 0, binarized.stdout + binarized.stderr
    assert read(tmp_path / "b.tif").sum() == 25
    prepared = run(profile, "prepareexport", PROBABILITIES=path, THRESHOLD=0.5, MIN_OBJECT_SIZE=1,
                   QUALITY_LEVEL="none", OUTPUT_BINARIZED=tmp_path / "pb.tif", OUTPUT_EXTENT=tmp_path / "pe.tif",
                   OUTPUT_PROBABILITIES=tmp_path / "pp.tif", OUTPUT_POLYGONS=tmp_path / "pp.gpkg")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert read(tmp_path / "pb.tif").sum() == 25
    [(attributes, _)] = features(tmp_path / "pp.gpkg")[1]
    assert attributes["min"] == attributes["max"] == 0.5 + 1e-9
    masked = read(tmp_path / "pp.tif")
    assert masked.dtype == np.float64
    np.testing.assert_array_equal(masked, probabilities)


# -- 5. quality sources with impossible values ---------------------------------------------

def test_impossible_scl_and_udm2_values_are_refused(profile, tmp_path):
    scl = np.tile(np.arange(12, dtype=np.uint8), (4, 1))
    for name, array in [("scl12", np.where(scl == 3, 12, scl).astype(np.uint8)),
                        ("sclneg", np.where(scl == 3, -1, scl).astype(np.int16))]:
        path = write_raster(tmp_path / f"{name}.tif", array)
        refused(run(profile, "qualitymask", INPUT=path, SOURCE="scl", OUTPUT=tmp_path / "q.tif"), "SCL", "0..11")
    udm2 = np.zeros((8, 4, 12), np.uint8)
    udm2[0] = 1
    udm2[2, 0, 0] = 2  # band 3 (shadow) is a 0/1 flag
    path = write_raster(tmp_path / "udm2.tif", udm2)
    refused(run(profile, "qualitymask", INPUT=path, SOURCE="udm2", OUTPUT=tmp_path / "q.tif"), "band 3", "0 or 1")
    assert not (tmp_path / "q.tif").exists()
    # nodata is still read as "no data" (class 0), whatever its value
    path = write_raster(tmp_path / "sclnodata.tif", np.where(scl == 11, 255, scl).astype(np.uint8), nodata=255)
    written = run(profile, "qualitymask", INPUT=path, SOURCE="scl", OUTPUT=tmp_path / "q.tif")
    assert written.returncode == 0, written.stdout + written.stderr
    assert (read(tmp_path / "q.tif")[scl == 11] == 0).all()


# -- 6. areas without a CRS or a geotransform ----------------------------------------------

@pytest.mark.parametrize("georeferencing,unit", [({"crs": None}, "square map units"),
                                                 ({"crs": None, "geotransform": None}, "pixels")])
def test_areas_without_georeferencing_say_what_they_are(profile, sample, tmp_path, georeferencing, unit):
    probabilities = write_raster(tmp_path / "p.tif", read(sample["probabilities"]), nodata=255, **georeferencing)
    prepared = run(profile, "prepareexport", PROBABILITIES=probabilities, MIN_OBJECT_SIZE=4,
                   OUTPUT_BINARIZED=tmp_path / "b.tif", OUTPUT_EXTENT=tmp_path / "e.tif",
                   OUTPUT_POLYGONS=tmp_path / "objects.gpkg", OUTPUT_REPORT=tmp_path / "report.html")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert f"area_m2 is in {unit}, not m²" in prepared.stdout + prepared.stderr
    assert f"area_m2 is in {unit}, not m²" in (tmp_path / "report.html").read_text(encoding="utf-8")
    polygons = run(profile, "polygonize", BINARIZED=tmp_path / "b.tif", OUTPUT=tmp_path / "again.gpkg")
    assert polygons.returncode == 0, polygons.stdout + polygons.stderr
    assert f"area_m2 is in {unit}, not m²" in polygons.stdout + polygons.stderr
    binarized = write_raster(tmp_path / "geo.tif", read(tmp_path / "b.tif"))
    georeferenced = run(profile, "polygonize", BINARIZED=binarized, OUTPUT=tmp_path / "geo.gpkg")
    assert georeferenced.returncode == 0 and "not m²" not in georeferenced.stdout + georeferenced.stderr


# -- 7. a disk that fills up while the files are closed ------------------------------------

def many_objects(path):
    """A binarized raster with thousands of single-pixel objects: a GeoPackage of some 100 kB,
    whose spatial index GDAL writes only when the file is flushed or closed."""
    binary = np.zeros((160, 160), np.uint8)
    binary[::2, ::2] = 1
    return write_raster(path, binary)


def limited(size_bytes):
    """preexec_fn: files may not grow beyond `size_bytes`, and writing beyond that fails with
    EFBIG instead of killing the process (as on a full disk)."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
    return apply


def test_failure_while_closing_a_geopackage_fails_the_run(profile, tmp_path):
    binarized = many_objects(tmp_path / "b.tif")
    out = tmp_path / "out"
    full = run(profile, "polygonize", BINARIZED=binarized, OUTPUT=out / "full.gpkg")
    assert full.returncode == 0, full.stdout + full.stderr
    size = (out / "full.gpkg").stat().st_size
    result = qgis_process(profile, "run", "darts:polygonize", "--", f"BINARIZED={binarized}",
                          f"OUTPUT={out / 'objects.gpkg'}", preexec_fn=limited(size * 9 // 10))
    refused(result, "could not write", "objects.gpkg")
    assert not (out / "objects.gpkg").exists()
    assert leftovers(out) == []


def test_failure_while_writing_a_geotiff_fails_the_run(profile, tmp_path):
    probabilities = write_raster(tmp_path / "p.tif", np.random.default_rng(0).random((300, 300)))
    result = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={probabilities}",
                          f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}",
                          f"OUTPUT_PROBABILITIES={tmp_path / 'masked.tif'}", preexec_fn=limited(200_000))
    refused(result, "could not write", "masked.tif")
    assert [name for name in os.listdir(tmp_path) if not name.startswith("p.tif")] == []  # QGIS may add p.tif.aux.xml



# -- 9. replacing the outputs is all or nothing ---------------------------------------------

TILE = ["binarized.tif", "darts_inference.json", "extent.tif", "prediction_extent.gpkg", "prediction_segments.gpkg",
        "probabilities.tif", "thumbnail.jpg"]


def test_a_tile_file_that_cannot_be_replaced_changes_nothing(profile, sample, tmp_path):
    prepared = run(profile, "prepareexport", PROBABILITIES=sample["probabilities"], QUALITY_MASK=sample["quality"],
                   OUTPUT_BINARIZED=tmp_path / "b.tif", OUTPUT_EXTENT=tmp_path / "e.tif")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    tile = tmp_path / "tile"
    tile.mkdir()
    for name in TILE:
        (tile / name).write_text(f"old {name}")
    (tile / "quicklook.png").mkdir()  # a folder where the quicklook goes
    (tile / "quicklook.png" / "keep.txt").write_text("kept")
    result = run(profile, "exporttile", PROBABILITIES=sample["probabilities"], BINARIZED=tmp_path / "b.tif",
                 EXTENT=tmp_path / "e.tif", OUTPUT_FOLDER=tile)
    refused(result, "quicklook.png", "folder")
    assert sorted(os.listdir(tile)) == sorted(TILE + ["quicklook.png"])
    assert all((tile / name).read_text() == f"old {name}" for name in TILE)
    assert (tile / "quicklook.png" / "keep.txt").read_text() == "kept"


# -- 10. killed and canceled runs -----------------------------------------------------------

def big_probabilities(path, size=5000):
    return write_raster(path, np.random.default_rng(0).random((size, size), dtype=np.float32))


def start(profile, algorithm, log, **parameters):
    return subprocess.Popen(["qgis_process", "run", f"darts:{algorithm}", "--",
                             *[f"{name}={value}" for name, value in parameters.items()]],
                            env=profile, stdout=log, stderr=subprocess.STDOUT)


def wait_for(condition, process, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "the run ended before the moment to stop it"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_killed_run_leaves_no_output_and_the_next_run_cleans_up(profile, tmp_path):
    probabilities = big_probabilities(tmp_path / "p.tif")
    out = tmp_path / "out"
    out.mkdir()
    outputs = dict(OUTPUT_BINARIZED=out / "b.tif", OUTPUT_EXTENT=out / "e.tif", OUTPUT_PROBABILITIES=out / "m.tif")
    with open(tmp_path / "log", "w") as log:
        process = start(profile, "prepareexport", log, PROBABILITIES=probabilities, QUALITY_LEVEL="none", **outputs)
        # killed while writing its outputs (not while the empty probe of the writability check exists)
        wait_for(lambda: any(written(out / name) for name in leftovers(out)), process)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert leftovers(out) and not [name for name in os.listdir(out) if not name.startswith(".")]
    again = run(profile, "binarize", PROBABILITIES=probabilities, OUTPUT=out / "b.tif")
    assert again.returncode == 0, again.stdout + again.stderr
    assert os.listdir(out) == ["b.tif"]


def test_ctrl_c_fails_the_run(profile, tmp_path):
    probabilities = big_probabilities(tmp_path / "p.tif")
    with open(tmp_path / "log", "w") as log:
        process = start(profile, "binarize", log, PROBABILITIES=probabilities, OUTPUT=tmp_path / "b.tif")
        wait_for(lambda: "10..." in (tmp_path / "log").read_text(), process)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    text = (tmp_path / "log").read_text()
    assert process.returncode != 0 and "Canceled: no output was written." in text, text
    assert "Traceback" not in text and sorted(os.listdir(tmp_path)) == ["log", "p.tif"]


# -- 12. inputs stay byte for byte as they were ----------------------------------------------

def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def inputs_folder(sample, tmp_path):
    """A VRT of the sample's probabilities beside GeoTIFFs, and the folder's bytes."""
    folder = tmp_path / "in"
    folder.mkdir()
    for kind in ("probabilities", "quality"):
        (folder / f"{kind}.tif").write_bytes(open(sample[kind], "rb").read())
    gdal.BuildVRT(str(folder / "mosaic.vrt"), [str(folder / "probabilities.tif")]).FlushCache()
    write_raster(folder / "objects.tif", (read(sample["probabilities"]) > 50).astype(np.uint8))
    return folder, snapshot(folder)


def test_inputs_are_not_rewritten_by_qgis_process(profile, sample, tmp_path):
    folder, before = inputs_folder(sample, tmp_path)
    for algorithm, parameters in [
        ("binarize", dict(PROBABILITIES=folder / "mosaic.vrt", MASK=folder / "quality.tif", OUTPUT=tmp_path / "b.tif")),
        ("prepareexport", dict(PROBABILITIES=folder / "mosaic.vrt", QUALITY_MASK=folder / "quality.tif",
                               OUTPUT_BINARIZED=tmp_path / "pb.tif", OUTPUT_EXTENT=tmp_path / "pe.tif")),
        ("polygonize", dict(BINARIZED=folder / "objects.tif", PROBABILITIES=folder / "mosaic.vrt",
                            OUTPUT=tmp_path / "p.gpkg")),
    ]:
        result = run(profile, algorithm, **parameters)
        assert result.returncode == 0, result.stdout + result.stderr
        assert snapshot(folder) == before, algorithm


def test_ensemble_subsets_are_not_rewritten(profile, sample, tmp_path):
    folder, before = inputs_folder(sample, tmp_path)
    result = run(profile, "prepareexport", PROBABILITIES=folder / "mosaic.vrt", SUBSET_PROBABILITIES=folder / "mosaic.vrt",
                 OUTPUT_BINARIZED=tmp_path / "b.tif", OUTPUT_EXTENT=tmp_path / "e.tif")
    assert result.returncode == 0, result.stdout + result.stderr
    assert snapshot(folder) == before


def test_inputs_are_not_rewritten_by_processing_run(provider, sample, tmp_path):
    from qgis import processing

    folder, before = inputs_folder(sample, tmp_path)
    processing.run("darts:binarize", {"PROBABILITIES": str(folder / "mosaic.vrt"), "MASK": str(folder / "quality.tif"),
                                      "OUTPUT": str(tmp_path / "b.tif")})
    gc.collect()  # the layers a run loaded are gone now, whenever Python would have let them go
    assert snapshot(folder) == before


# -- 13. outputs that cannot be written fail before any computing --------------------------

def test_outputs_that_cannot_be_written_fail_at_once(profile, sample, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    for place in [tmp_path / "a-file" / "e.tif", "/proc/e.tif", "/proc/self/nothing/e.tif"]:
        text = refused(run(profile, "prepareexport", PROBABILITIES=sample["probabilities"],
                           OUTPUT_BINARIZED=tmp_path / "b.tif", OUTPUT_EXTENT=place), "OUTPUT_EXTENT", str(place))
        assert "Reading and checking the rasters" not in text and ".partial" not in text
        assert sorted(os.listdir(tmp_path)) == ["a-file", "input"]
    text = refused(run(profile, "exporttile", PROBABILITIES=sample["probabilities"], BINARIZED=sample["probabilities"],
                       EXTENT=sample["probabilities"], OUTPUT_FOLDER=tmp_path / "a-file" / "tile"), "OUTPUT_FOLDER")
    assert "a-file" in text


# -- 14. damaged inputs -------------------------------------------------------------------

def truncated(path, source):
    data = open(source, "rb").read()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_damaged_raster_is_one_clear_line(profile, sample, tmp_path):
    probabilities = truncated(tmp_path / "cut.tif", write_raster(tmp_path / "p.tif", read(sample["probabilities"])))
    quality = truncated(tmp_path / "cutq.tif", write_raster(tmp_path / "q.tif", read(sample["quality"])))
    for algorithm, parameters, name in [
        ("prepareexport", dict(PROBABILITIES=probabilities, OUTPUT_BINARIZED=tmp_path / "b.tif",
                               OUTPUT_EXTENT=tmp_path / "e.tif"), "PROBABILITIES"),
        ("polygonize", dict(BINARIZED=probabilities, OUTPUT=tmp_path / "p.gpkg"), "BINARIZED"),
        ("qualitymask", dict(INPUT=quality, SOURCE="scl", OUTPUT=tmp_path / "q.tif"), "INPUT"),
    ]:
        text = refused(run(profile, algorithm, **parameters), name, os.path.basename(parameters[name]), "damaged")
        assert not [line for line in text.splitlines() if "IReadBlock" in line and "damaged" not in line], text
    model = qgis_process(profile, "run", str(MODEL), "--", f"probabilities={probabilities}",
                         f"quality_mask={sample['quality']}", f"binarized_segmentation={tmp_path / 'b.tif'}",
                         f"extent={tmp_path / 'e.tif'}", f"object_polygons={tmp_path / 'p.gpkg'}")
    refused(model, "PROBABILITIES", "cut.tif", "damaged")


# -- 16. QGIS's "Save to GeoPackage": a layer in an existing GeoPackage --------------------

def test_polygons_into_a_layer_of_an_existing_geopackage(profile, tmp_path):
    binarized = many_objects(tmp_path / "b.tif")
    first = run(profile, "polygonize", BINARIZED=binarized, OUTPUT=tmp_path / "store.gpkg")
    assert first.returncode == 0, first.stdout + first.stderr
    into = f"ogr:dbname='{tmp_path / 'store.gpkg'}' table=\"slumps\" (geom)"
    for _ in range(2):  # the second run replaces the layer it wrote
        result = run(profile, "polygonize", BINARIZED=binarized, OUTPUT=into)
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(layers(tmp_path / "store.gpkg")) == ["slumps", "store"]
        assert len(features(tmp_path / "store.gpkg", "slumps")[1]) == len(features(tmp_path / "store.gpkg", "store")[1])
    assert leftovers(tmp_path) == []
    refused(run(profile, "polygonize", BINARIZED=binarized, OUTPUT=f"ogr:dbname='{tmp_path / 'x.shp'}' table=\"a\""),
            "GeoPackage")


# -- 11. the model: a later step that fails leaves no output (its last step writes them all) --

def file_size_limit(size_bytes):
    """preexec_fn: no file may grow beyond `size_bytes` (a full disk); writing more fails
    (EFBIG) instead of killing the process (SIGXFSZ ignored, as Python does)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size_bytes, size_bytes))
    return limit


@pytest.mark.parametrize("fault", ["polygons cannot be written", "disk full while polygonizing"])
def test_model_failing_in_a_later_step_fails_clearly(profile, sample, tmp_path, fault):
    """The steps before the failing one succeeded, yet no output appears: they wrote to QGIS's
    temporary files (gone when qgis_process ends), and only the last step, which did not run
    or failed, writes the model's outputs."""
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "tmp").mkdir()
    polygons = tmp_path / "a-file" / "p.gpkg" if fault == "polygons cannot be written" else tmp_path / "p.gpkg"
    # the polygons' GeoPackage takes ~110 KB, the rasters ~2 KB each
    options = {"preexec_fn": file_size_limit(50_000)} if fault == "disk full while polygonizing" else {}
    result = qgis_process({**profile, "TMPDIR": str(tmp_path / "tmp")}, "run", str(MODEL), "--",
                          f"probabilities={sample['probabilities']}", f"quality_mask={sample['quality']}",
                          "erosion_size=3", "min_object_size=10", f"binarized_segmentation={tmp_path / 'b.tif'}",
                          f"extent={tmp_path / 'e.tif'}", f"object_polygons={polygons}", **options)
    if fault == "polygons cannot be written":
        refused(result, "Write outputs together", "a-file", "not a folder")
        assert "objects polygonized." in result.stdout  # every step before the last succeeded
    else:
        refused(result, "Polygonize objects", "could not write")
    assert sorted(os.listdir(tmp_path)) == ["a-file", "input", "tmp"]
    assert [name for name in os.listdir(tmp_path / "tmp") if name.startswith("processing")] == []  # QGIS's temporaries


# -- 15. a raster too large for memory is one clear line, not a MemoryError traceback ------

def address_space(size_bytes):
    """preexec_fn: the process may map at most `size_bytes` (as on a machine with that memory)."""
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (size_bytes, size_bytes))


def test_not_enough_memory_is_one_clear_line(profile, tmp_path):
    """A 20000 x 20000 mask needs ~1.5 GB in memory: under a 1.5 GB address-space limit the
    in-memory erosion fails with one line that says what to do; doing it (a lower MEMORY_LIMIT,
    block by block) then succeeds under the same limit."""
    mask = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "q.tif"), 20000, 20000, 1, gdal.GDT_Byte,
                                                ["COMPRESS=DEFLATE", "TILED=YES"])
    mask.SetGeoTransform((600000.0, 10.0, 0, 7800000.0, 0, -10.0))
    mask.GetRasterBand(1).Fill(2)
    mask = None
    limit = address_space(3 * 2 ** 29)
    arguments = ["run", "darts:erodemask", "--", f"MASK={tmp_path / 'q.tif'}", "SIZE=3"]
    in_memory = qgis_process(profile, *arguments, "MEMORY_LIMIT=1000000", f"OUTPUT={tmp_path / 'a.tif'}",
                             preexec_fn=limit)
    text = refused(in_memory, "Not enough memory for this raster", "MEMORY_LIMIT lower")
    assert "MemoryError" not in text, text
    assert not (tmp_path / "a.tif").exists()
    blocks = qgis_process(profile, *arguments, "MEMORY_LIMIT=100", f"OUTPUT={tmp_path / 'b.tif'}", preexec_fn=limit)
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr
    assert "Processing in blocks" in blocks.stdout
