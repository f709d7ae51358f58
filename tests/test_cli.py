"""The command line without QGIS (`python3 -m darts_postprocessing`, cli.py): qgis_process's
parameter forms, one-line errors and exit codes, help, progress, Ctrl-C, and the runs
themselves on small DARTS tiles. Files need GDAL's osgeo: those tests skip without it (the venv).
tests/qgis/test_cli_matches_qgis_process.py holds the files to qgis_process's."""

import importlib.util
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from darts_postprocessing import cli

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

needs_gdal = pytest.mark.skipif(importlib.util.find_spec("osgeo") is None,
                                reason="GDAL's osgeo is not installed in this Python")


def run(*argv):
    """main() in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        status = cli.main(list(argv))
    finally:
        sys.stdout, sys.stderr = saved
    return status, out.getvalue(), err.getvalue()


def module(package_parent, *argv, **options):
    """`python3 -m darts_postprocessing ...` as a program (the package from the checkout)."""
    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    return subprocess.run([sys.executable, "-m", "darts_postprocessing", *argv], env=environment, capture_output=True,
                          text=True, timeout=300, **options)


# -- the command line itself -----------------------------------------------------------------------
def test_key_value_and_dash_forms_give_the_same_values(tmp_path):
    folder = str(tmp_path)
    forms = [["processtiles", f"INPUT_FOLDER={folder}", "OUTPUT=r.gpkg", "WORKERS=3", "QUALITY_LEVEL=high_quality"],
             ["processtiles", "--", f"INPUT_FOLDER={folder}", "OUTPUT=r.gpkg", "WORKERS=3",
              "QUALITY_LEVEL=high_quality"],
             ["processtiles", "--INPUT_FOLDER", folder, "--OUTPUT", "r.gpkg", "--WORKERS", "3", "--QUALITY_LEVEL",
              "high_quality"],
             ["processtiles", f"--INPUT_FOLDER={folder}", "--OUTPUT=r.gpkg", "--workers=3",
              "quality_level=high_quality"]]
    parsed = [cli.parse(argv) for argv in forms]
    assert all(result == parsed[0] for result in parsed)
    algorithm, values, quiet = parsed[0]
    assert algorithm == "processtiles" and not quiet
    assert values["WORKERS"] == 3 and values["QUALITY_LEVEL"] == "high_quality" and values["OUTPUT"] == "r.gpkg"
    # The defaults are the algorithm's (qgis_process help darts:processtiles).
    assert values["THRESHOLD"] == 0.5 and values["MASK_EROSION_SIZE"] == 10 and values["EDGE_EROSION_SIZE"] is None
    assert values["MIN_OBJECT_SIZE"] == 32 and values["TARGET_CRS"] == "EPSG:3413" and values["GROUP_BY"] == "year"
    assert values["BOUNDARY"] == "remove" and values["SIZE_CONNECTIVITY"] == "8" and values["STOP_ON_ERROR"] is False
    assert values["MAX_EXCLUDED_SHARE"] == 0.0 and values["STATISTICS_SCALE"] == "fraction"


def test_values_that_start_with_a_dash_and_repeated_multi_layer_parameters(tmp_path):
    files = []
    for name in ("probabilities-a.tif", "probabilities-b.tif", "-odd.tif"):
        (tmp_path / name).write_bytes(b"")
        files.append(str(tmp_path / name))
    _, values, _ = cli.parse(["exporttile", f"PROBABILITIES={files[2]}", "--BINARIZED", files[2],
                              f"EXTENT={files[2]}", f"SUBSET_PROBABILITIES={files[0]}",
                              "--SUBSET_PROBABILITIES", files[1], "OUTPUT_FOLDER=out", "-q"])
    assert values["SUBSET_PROBABILITIES"] == files[:2] and values["BINARIZED"] == files[2]
    os.chdir(tmp_path)
    _, values, quiet = cli.parse(["exporttile", "PROBABILITIES=-odd.tif", "--BINARIZED", "-odd.tif",
                                  "EXTENT=-odd.tif", "OUTPUT_FOLDER=out", "--quiet"])
    assert values["BINARIZED"] == "-odd.tif" and quiet


@pytest.mark.parametrize("argv, message", [
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "THRESHOLDD=0.4"], "unknown parameter THRESHOLDD for "
                                                                             "processtiles"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "--BOGUS", "1"], "unknown parameter BOGUS"),
    (["processtiles", "OUTPUT=r.gpkg"], "INPUT_FOLDER is required"),
    (["processtiles", "INPUT_FOLDER=."], "OUTPUT is required"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "QUALITY_LEVEL=medium"],
     "QUALITY_LEVEL: 'medium' is not one of none, low_quality, high_quality"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "QUALITY_LEVEL=1"], "is not one of"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "THRESHOLD=high"], "THRESHOLD: 'high' is not a number"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "THRESHOLD=1.5"], "THRESHOLD: 1.5 is out of range"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "WORKERS=0"], "WORKERS: 0 is out of range (at least 1)"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "WORKERS=1.5"], "WORKERS: '1.5' is not a whole number"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "STOP_ON_ERROR=maybe"], "is not true or false"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.shp"], "OUTPUT: written as GeoPackage, so the file must end in .gpkg"),
    (["processtiles", "INPUT_FOLDER=/no/such/folder", "OUTPUT=r.gpkg"], "INPUT_FOLDER: '/no/such/folder' is not a "
                                                                         "folder"),
    (["processtiles", "INPUT_FOLDER=.", "OUTPUT=r.gpkg", "OUTPUT=s.gpkg"], "OUTPUT is given twice"),
    (["processtiles", "INPUT_FOLDER=.", "--OUTPUT"], "--OUTPUT needs a value"),
    (["processtiles", "INPUT_FOLDER=.", "r.gpkg"], "'r.gpkg' is no parameter"),
    (["polygonize", "BINARIZED=/no/such.tif", "OUTPUT=p.gpkg"], "BINARIZED: '/no/such.tif' is not a file"),
    (["compareyears", "INPUT=/no/such.gpkg|layername=slumps", "OUTPUT=c.gpkg"], "INPUT: '/no/such.gpkg' does not exist"),
    (["compareyears", "OUTPUT=c.gpkg"], "INPUT is required"),
    (["compareyears", f"INPUT={__file__}", "OUTPUT=c.gpkg", "OBSERVED_SHARE=0"],
     "OBSERVED_SHARE: 0 is out of range (at least 0.001 and at most 1)"),
    (["compareyears", f"INPUT={__file__}", "OUTPUT=c.gpkg", "TOLERANCE=-0.1"], "TOLERANCE: -0.1 is out of range (at "
                                                                              "least 0)\n"),
    (["tiles"], "invalid choice: 'tiles'"),
    ([], "give an algorithm"),
])
def test_a_bad_command_line_is_one_line_and_exit_status_2(argv, message):
    status, out, err = run(*argv)
    assert status == 2 and not out
    assert err.count("\n") == 1 and err.startswith("python3 -m darts_postprocessing: error: ") and message in err, err


def test_help_lists_the_algorithms_and_each_ones_parameters_with_defaults(package_parent):
    top = module(package_parent, "--help")
    assert top.returncode == 0
    for name in ("processtiles", "polygonize", "exporttile", "prepareexport", "evaluate", "compareyears",
                 "erodemask", "binarize", "qualitymask"):
        assert name in top.stdout
    helped = module(package_parent, "processtiles", "--help")
    assert helped.returncode == 0
    for parameter in cli.ALGORITHMS["processtiles"][1]:
        assert f"--{parameter.name}" in helped.stdout
    text = " ".join(helped.stdout.split())
    assert "(default: 0.5)" in text and "(default: EPSG:3413)" in text and "one of year, date, none (default: year)" \
        in text and "Folder of tile folders (required)" in text


def test_prepareexport_checks_its_parameters_before_running():
    status, out, err = run("prepareexport", "PROBABILITIES=" + __file__, "OUTPUT_BINARIZED=b.tif",
                           "OUTPUT_EXTENT=e.tif", "THRESHOLDS=0,1")
    assert status != 0 and not out and err.count("\n") == 1 and "no decimal point" in err
    status, _, err = run("prepareexport", "PROBABILITIES=" + __file__, "OUTPUT_BINARIZED=b.tif")
    assert status == 2 and "OUTPUT_EXTENT is required" in err


def test_progress_is_a_percentage_line_on_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    console = cli.Console("polygonize", stream=terminal)
    console.progress(0.25, "Tracing")
    console.progress(0.5, "Tracing")
    console.end_line()
    assert terminal.getvalue().startswith("\rpolygonize:  25% Tracing\rpolygonize:  50% Tracing") \
        and terminal.getvalue().endswith("\n")
    for console in (cli.Console("polygonize", quiet=True, stream=Terminal()), cli.Console("polygonize",
                                                                                         stream=io.StringIO())):
        console.progress(0.5, "Tracing")
        console.end_line()
        assert console.stream.getvalue() == ""


# -- runs ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    """A small tile as prepareexport leaves it: probabilities (DARTS' percent), binarized, extent."""
    pytest.importorskip("osgeo")
    from darts_postprocessing.core import prepare_export
    from darts_postprocessing.core.files.geotiff import read_band, write_geotiff
    from sample_tile import write_sample_tile

    folder = tmp_path_factory.mktemp("tile")
    probabilities, quality = write_sample_tile(str(folder / "input"), size=400, seed=3)
    percent, _ = read_band(probabilities, "p")
    from darts_postprocessing.core.files.grids import grid_of

    grid = grid_of(probabilities, "p")
    fractions = np.where(percent == 255, np.nan, percent / np.float32(100)).astype(np.float32)
    result = prepare_export({"probabilities": fractions, "quality_data_mask": read_band(quality, "q")[0]}, 0.5, 5, 8, 1)
    paths = {"probabilities": probabilities, "quality": quality}
    for name, key in (("binarized", "binarized_segmentation"), ("extent", "extent")):
        paths[name] = str(folder / f"{name}.tif")
        write_geotiff(paths[name], np.asarray(result[key], np.uint8), grid.geotransform, grid.crs)
    return paths


@needs_gdal
def test_polygonize_writes_the_objects_in_memory_and_block_by_block(tile, tmp_path):
    from vectors import features

    status, out, err = run("polygonize", f"BINARIZED={tile['binarized']}", f"PROBABILITIES={tile['probabilities']}",
                           f"OUTPUT={tmp_path / 'objects.gpkg'}", "STATISTICS_SCALE=percent")
    assert status == 0, err
    assert out == f"OUTPUT: {tmp_path / 'objects.gpkg'}\n" and "objects polygonized" in err
    layer, found = features(str(tmp_path / "objects.gpkg"))
    assert layer == "objects" and found
    status, _, err = run("polygonize", f"BINARIZED={tile['binarized']}", f"PROBABILITIES={tile['probabilities']}",
                         f"OUTPUT={tmp_path / 'blocks.gpkg'}", "STATISTICS_SCALE=percent", "MEMORY_LIMIT=1")
    assert status == 0, err
    assert "Processing in blocks of" in err
    _, blocks = features(str(tmp_path / "blocks.gpkg"))
    assert [attributes for attributes, _ in blocks] == [attributes for attributes, _ in found]
    assert all(a.Equals(b) for (_, a), (_, b) in zip(blocks, found))
    from reading import tags

    written = tags(str(tmp_path / "objects.gpkg"))
    assert written["DARTS_postprocessing"].startswith("darts:polygonize (DARTS Postprocessing for QGIS ")
    assert written["DARTS_polygonize_binarized"] == "binarized.tif"
    assert written["DARTS_polygonize_statistics_scale"] == "percent"


@needs_gdal
def test_exporttile_writes_darts_tile_folder_in_memory_and_block_by_block(tile, tmp_path):
    from reading import pixels, tags

    common = [f"PROBABILITIES={tile['probabilities']}", f"BINARIZED={tile['binarized']}", f"EXTENT={tile['extent']}",
              "-q"]
    status, out, err = run("exporttile", *common, f"OUTPUT_FOLDER={tmp_path / 'T1'}")
    assert status == 0 and not err.replace("warning: Skipped", "").strip().startswith("exporttile: error"), err
    assert f"OUTPUT_FOLDER: {tmp_path / 'T1'}" in out and "OUTPUT_METADATA: " in out
    status, _, err = run("exporttile", *common, f"OUTPUT_FOLDER={tmp_path / 'T2'}", "MEMORY_LIMIT=1")
    assert status == 0, err
    for name in ("probabilities.tif", "binarized.tif", "extent.tif"):
        np.testing.assert_array_equal(pixels(str(tmp_path / "T1" / name)), pixels(str(tmp_path / "T2" / name)))
    expected = sorted(os.listdir(tmp_path / "T1"))
    assert sorted(os.listdir(tmp_path / "T2")) == expected
    assert {"darts_inference.json", "prediction_segments.gpkg", "thumbnail.jpg", "quicklook.png"} <= set(expected)
    assert tags(str(tmp_path / "T1" / "binarized.tif"))["DARTS_tileid"] == "T1"


@needs_gdal
def test_processtiles_merges_darts_tiles(tmp_path):
    from darts_folders import darts_run
    from vectors import features

    darts_run(tmp_path / "run", years=(2019,))
    output = tmp_path / "out" / "region.gpkg"
    status, out, err = run("processtiles", f"INPUT_FOLDER={tmp_path / 'run'}", f"OUTPUT={output}", "WORKERS=1",
                           f"OUTPUT_TILES={tmp_path / 'tiles'}")
    assert status == 0, err
    assert "TILES_PROCESSED: 3\n" in out and "3 tiles processed, 0 skipped" in err
    _, merged = features(str(output))
    assert merged and {attributes["year"] for attributes, _ in merged} == {2019}
    assert len(os.listdir(tmp_path / "tiles")) == 3


@needs_gdal
def test_a_failing_run_is_one_line_exit_1_and_leaves_nothing(tile, tmp_path):
    status, out, err = run("polygonize", f"BINARIZED={tile['probabilities']}", f"OUTPUT={tmp_path / 'p.gpkg'}")
    assert status == 1 and not out and err.count("\n") == 1
    assert err.startswith("polygonize: error: BINARIZED holds values other than 0 and 1")
    assert os.listdir(tmp_path) == []
    from darts_postprocessing.core.files.geotiff import write_geotiff

    other = str(tmp_path.parent / f"{tmp_path.name}-small.tif")
    write_geotiff(other, np.zeros((10, 10), np.float32), (0, 1, 0, 0, 0, -1), "EPSG:32607")
    status, _, err = run("polygonize", f"BINARIZED={tile['binarized']}", f"OUTPUT={tmp_path / 'p.gpkg'}",
                         f"PROBABILITIES={other}")
    assert status == 1 and err.count("\n") == 1 and "BINARIZED and PROBABILITIES are not on the same grid" in err, err
    status, _, err = run("processtiles", f"INPUT_FOLDER={tmp_path}", f"OUTPUT={tmp_path / 'r.gpkg'}",
                         "TARGET_CRS=EPSG:4326")
    assert status == 1 and "TARGET_CRS: EPSG:4326 is geographic" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


@needs_gdal
def test_evaluate_scores_a_folder_of_darts_tiles_and_says_its_errors_in_one_line(tmp_path):
    """The sweep's table, the best setting on stdout as qgis_process's results; a bad input is
    one line, exit 1, and nothing is written."""
    import csv

    from darts_folders import darts_region

    _, reference, drawn = darts_region(tmp_path)
    out = tmp_path / "out"
    status, stdout, err = run("evaluate", f"INPUT_FOLDER={tmp_path / 'run'}", f"REFERENCE={reference}", "BOUNDARY=clip",
                              "THRESHOLDS=0.3,0.7", "MIN_OBJECT_SIZES=0,32", f"OUTPUT_TABLE={out / 's.csv'}",
                              f"OUTPUT_MISSED={out / 'm.gpkg'}")
    assert status == 0, err
    with open(out / "s.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["threshold"], row["min_object_size"]) for row in rows] == [("0.3", "0"), ("0.3", "32"), ("0.7", "0"),
                                                                              ("0.7", "32")]
    assert all(row["reference_slumps"] == str(drawn + 1) for row in rows)
    assert "BEST_THRESHOLD: 0.3" in stdout and f"OUTPUT_MISSED: {out / 'm.gpkg'}" in stdout
    assert "Best setting by object_f1" in err
    tile = next(path for path in (tmp_path / "run").iterdir() if (path / "probabilities.tif").exists())
    for argv, message in (
            ([f"REFERENCE={reference}"], "PROBABILITIES: no raster given (or give TILES or INPUT_FOLDER)"),
            ([f"INPUT_FOLDER={tmp_path / 'run'}", f"PROBABILITIES={tile / 'probabilities.tif'}", f"REFERENCE={reference}"],
             "PROBABILITIES and INPUT_FOLDER are both given"),
            ([f"PROBABILITIES={tile / 'probabilities.tif'}", f"REFERENCE={reference}", "MIN_OBJECT_SIZES=0,x"],
             "MIN_OBJECT_SIZES: 'x' is no pixel count")):
        status, stdout, err = run("evaluate", *argv, f"OUTPUT_TABLE={tmp_path / 'bad' / 's.csv'}")
        assert status == 1 and not stdout and err.count("\n") == 1 and message in err, err
        assert not (tmp_path / "bad").exists() or not os.listdir(tmp_path / "bad")


@needs_gdal
def test_ctrl_c_cancels_and_leaves_nothing_behind(package_parent, tmp_path):
    """SIGINT while blocks are being polygonized in threads: exit 130, one line, no file."""
    from darts_postprocessing.core.files.geotiff import write_geotiff

    rng = np.random.default_rng(0)
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_geotiff(str(inputs / "big.tif"), (rng.random((1500, 1500)) > 0.6).astype(np.uint8),
                  (500000, 10, 0, 7700000, 0, -10), "EPSG:32607")
    out = tmp_path / "out"
    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    process = subprocess.Popen([sys.executable, "-m", "darts_postprocessing", "polygonize",
                                f"BINARIZED={inputs / 'big.tif'}", f"OUTPUT={out / 'big.gpkg'}", "MEMORY_LIMIT=2"],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stderr.readline()  # "Processing in blocks of ...": the blocks are starting
    assert first.startswith("Processing in blocks"), first
    time.sleep(1.0)
    assert process.poll() is None, "the run ended before it could be canceled: make the input larger"
    process.send_signal(signal.SIGINT)
    out_text, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    assert rest.strip() == "polygonize: Canceled: no output was written." and not out_text
    assert not out.exists() or os.listdir(out) == []
    assert os.listdir(inputs) == ["big.tif"]


@needs_gdal
def test_ctrl_c_stops_the_worker_processes_and_leaves_nothing_behind(package_parent, tmp_path):
    """SIGINT while tiles are processed in worker processes: exit 130, no map, no tile folder."""
    import shutil

    from darts_folders import darts_run

    darts_run(tmp_path / "one", years=(2019, 2024))
    for copy in range(40):  # enough tiles to be still running when the signal comes
        shutil.copytree(tmp_path / "one", tmp_path / "run" / f"copy{copy}")
    out = tmp_path / "out"
    environment = dict(os.environ, PYTHONPATH=str(package_parent))
    process = subprocess.Popen([sys.executable, "-m", "darts_postprocessing", "processtiles",
                                f"INPUT_FOLDER={tmp_path / 'run'}", f"OUTPUT={out / 'region.gpkg'}", "WORKERS=2",
                                f"OUTPUT_TILES={out / 'tiles'}"],
                               env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # the tile outputs' folder is made when the tiles are handed out
        if (out / "tiles").exists() or process.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be canceled: make the input larger"
    process.send_signal(signal.SIGINT)
    out_text, rest = process.communicate(timeout=120)
    assert process.returncode == 130, rest
    assert rest.strip().endswith("processtiles: Canceled: no output was written.") and not out_text
    assert not out.exists()


def test_exclude_takes_qgis_layer_suffixes():
    assert cli.exclusion_source(None) is None and cli.exclusion_source("") is None
    assert cli.exclusion_source("water.gpkg") == ("water.gpkg", None, None)
    assert cli.exclusion_source("water.gpkg|layername=lakes|subset=area > 100") == ("water.gpkg", "lakes", "area > 100")
    with pytest.raises(ValueError, match="unknown option |geometrytype="):
        cli.exclusion_source("water.gpkg|geometrytype=Polygon")


def test_compareyears_takes_several_maps_and_the_algorithms_defaults(tmp_path):
    _, values, _ = cli.parse(["compareyears", f"INPUT={__file__}|layername=a", "--INPUT", __file__,
                              f"COVERAGE={__file__}|layername=a_coverage", "OUTPUT=c.gpkg"])
    assert values["INPUT"] == [f"{__file__}|layername=a", __file__]
    assert values["COVERAGE"] == [f"{__file__}|layername=a_coverage"] and values["OUTPUT_REPORT"] is None
    assert (values["YEAR_FIELD"], values["TOLERANCE"], values["OBSERVED_SHARE"]) == ("year", 0.1, 0.5)
    assert cli.exclusion_source(f"{__file__}|layername=a", "INPUT") == (__file__, "a", None)
    with pytest.raises(ValueError, match="^COVERAGE: unknown option"):
        cli.exclusion_source(f"{__file__}|geometrytype=Polygon", "COVERAGE")


@needs_gdal
def test_compareyears_writes_the_changes_and_the_report(tmp_path):
    from vectors import features, write_map

    x, y = 600000, 7800000
    region = write_map(tmp_path / "region.gpkg", [(2020, (x, y, x + 100, y + 100)), (2021, (x, y, x + 100, y + 160)),
                                                  (2020, (x + 600, y, x + 650, y + 50)),
                                                  (2021, (x + 2000, y, x + 2050, y + 50))],
                       coverage=[(2020, (x - 50, y - 50, x + 1000, y + 500)), (2021, (x - 50, y - 50, x + 3000, y + 500))])
    out = tmp_path / "out"
    status, stdout, err = run("compareyears", f"INPUT={region}|layername=slumps", f"OUTPUT={out / 'changes.gpkg'}",
                              f"OUTPUT_REPORT={out / 'changes.html'}")
    assert status == 0, err
    assert stdout == f"OUTPUT: {out / 'changes.gpkg'}\nOUTPUT_REPORT: {out / 'changes.html'}\n"
    assert f"Coverage from {region} (layer slumps_coverage)" in err and "2020 → 2021: 1 grown" in err
    layer, found = features(str(out / "changes.gpkg"))
    assert layer == "changes"
    assert sorted((attributes["change"], attributes["ids_from"], attributes["ids_to"]) for attributes, _ in found) == \
        [("gone", "3", ""), ("grown", "1", "2"), ("unobserved", "", "4")]
    assert '<td id="count-2020-2021-gone">1</td>' in (out / "changes.html").read_text(encoding="utf-8")
    assert sorted(os.listdir(out)) == ["changes.gpkg", "changes.html"]


@needs_gdal
def test_compareyears_of_one_year_is_one_line_exit_1_and_leaves_nothing(tmp_path):
    from vectors import write_map

    one = write_map(tmp_path / "one.gpkg", [(2020, (600000, 7800000, 600010, 7800010))])
    out = tmp_path / "out"
    status, stdout, err = run("compareyears", f"INPUT={one}", f"OUTPUT={out / 'c.gpkg'}",
                              f"OUTPUT_REPORT={out / 'c.html'}")
    assert status == 1 and not stdout
    assert err == "compareyears: error: INPUT: the maps hold only the year 2020; at least two years are needed to " \
                  "compare\n", err
    assert not out.exists() or not os.listdir(out)
