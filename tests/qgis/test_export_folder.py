"""darts:exporttile writes DARTS' tile folder: thumbnail.jpg, darts_inference.json with DARTS'
keys and types, the ensemble subsets' files under DARTS' names, and a folder that DARTS' own
completeness check (darts_export.check.missing_outputs) finds complete: through qgis_process
and processing.run on real files."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException
from qgis_cli import qgis_process
from rasters import read
from reading import pixels
from reading import tags as dataset_tags
from sample_tile import percent, sample_arrays, write_tif
from vectors import features

gdal.UseExceptions()
DEFAULT_BANDS = ["probabilities", "binarized", "polygonized", "extent", "thumbnail"]
SUBSETS = ["with_tcvis", "without_tcvis"]
DARTS_INFERENCE_KEYS = ["DARTS_tileid", "DARTS_modelfiles", "DARTS_tpiouter", "DARTS_tpiinner", "DARTS_patchsize",
                        "DARTS_overlap", "DARTS_reflection", "DARTS_binarizethreshold", "DARTS_maskerosion",
                        "DARTS_edgeerosion", "DARTS_mmu", "DARTS_qualitymask", "DARTS_exportdate"]


def darts_expected_files(bands, subsets=()):
    """The file names DARTS' completeness check looks for, by its rules (darts-nextgen
    darts_export/check.py at 4af7791): per band, "polygonized" the segments' GeoPackage and
    GeoParquet (and each subset's), "binarized" and "probabilities" their GeoTIFFs (and each
    subset's), "extent" prediction_extent.gpkg and .parquet, "thumbnail" thumbnail.jpg, and
    any other band `<band>.tif`: "metadata" too, although DARTS' exporter writes that band as
    darts_inference.json (the check has no rule of its own for it)."""
    expected = []
    for band in bands:
        if band == "polygonized":
            for extension in ("gpkg", "parquet"):
                expected += [f"prediction_segments.{extension}"] + [f"prediction_segments-{s}.{extension}"
                                                                     for s in subsets]
        elif band in ("binarized", "probabilities"):
            expected += [f"{band}.tif"] + [f"{band}-{s}.tif" for s in subsets]
        elif band == "extent":
            expected += ["prediction_extent.gpkg", "prediction_extent.parquet"]
        elif band == "thumbnail":
            expected += ["thumbnail.jpg"]
        else:
            expected += [f"{band}.tif"]
    return expected


def missing_outputs(folder, bands=DEFAULT_BANDS, subsets=()):
    """("none" | "some" | "all", the missing names), as DARTS' missing_outputs decides."""
    expected = darts_expected_files(bands, subsets)
    missing = [name for name in expected if not (Path(folder) / name).exists()]
    return ("none" if not missing else "all" if len(missing) == len(expected) else "some"), missing


def parquet_supported():
    from darts_postprocessing.core.files.geoparquet import geoparquet_support

    return geoparquet_support()[0] is not None


def parquet_of(missing):
    return [name for name in missing if name.endswith(".parquet")]


def run(profile, algorithm, *arguments):
    result = qgis_process(profile, "run", algorithm, "--json", "--", *arguments)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["results"]


@pytest.fixture()
def ensemble(tmp_path):
    """A tile and two ensemble members as DARTS names them (probabilities-<subset>.tif), the
    main probabilities tagged as DARTS' exporter tags them."""
    probabilities, quality = sample_arrays(200, 5)
    folder = tmp_path / "20240715T213529_20240715T213531_T07WET"
    folder.mkdir()
    paths = {"probabilities": str(folder / "probabilities.tif"), "quality": str(tmp_path / "quality.tif")}
    write_tif(paths["probabilities"], percent(probabilities), nodata=255)
    dataset = gdal.Open(paths["probabilities"], gdal.GA_Update)
    dataset.SetMetadata({"DARTS_tileid": folder.name, "DARTS_modelfiles": "['with_tcvis.pt', 'without_tcvis.pt']",
                         "DARTS_tpiouter": "100", "DARTS_tpiinner": "0", "DARTS_patchsize": "1024",
                         "DARTS_overlap": "256", "DARTS_reflection": "0", "DARTS_binarizethreshold": "0.5",
                         "DARTS_maskerosion": "10", "DARTS_edgeerosion": "10", "DARTS_mmu": "32",
                         "DARTS_qualitymask": "1", "DARTS_exportdate": "2024-07-16 10:00:00+00:00"})
    dataset = None
    write_tif(paths["quality"], quality)
    for index, subset in enumerate(SUBSETS):
        member = np.clip(probabilities * np.float32(1.1 - 0.2 * index), 0, 1).astype(np.float32)
        paths[subset] = str(folder / f"probabilities-{subset}.tif")
        write_tif(paths[subset], percent(member), nodata=255)
    return paths


def test_exporttile_folder_passes_darts_completeness_check(profile, ensemble, tmp_path):
    out = tmp_path / "out"
    members = [f"SUBSET_PROBABILITIES={ensemble[subset]}" for subset in SUBSETS]
    prepared = run(profile, "darts:prepareexport", f"PROBABILITIES={ensemble['probabilities']}",
                   f"QUALITY_MASK={ensemble['quality']}", "MASK_EROSION_SIZE=3", "MIN_OBJECT_SIZE=10", *members,
                   f"OUTPUT_BINARIZED={out / 'binarized.tif'}", f"OUTPUT_EXTENT={out / 'extent.tif'}")
    # prepareexport names a member written as DARTS' probabilities-<subset>.tif by its subset.
    assert [os.path.basename(path) for path in prepared["OUTPUT_SUBSET_BINARIZED"]] == [
        f"binarized-{subset}.tif" for subset in SUBSETS]
    common = [f"PROBABILITIES={ensemble['probabilities']}", f"BINARIZED={prepared['OUTPUT_BINARIZED']}",
              f"EXTENT={prepared['OUTPUT_EXTENT']}"]
    plain, with_subsets = tmp_path / "plain" / "T07WET", tmp_path / "ensemble" / "T07WET"
    assert missing_outputs(plain) == ("all", darts_expected_files(DEFAULT_BANDS))  # the rules can fail
    written = run(profile, "darts:exporttile", *common, f"OUTPUT_FOLDER={plain}")
    # In reverse order: the binarized rasters are matched to their subsets by name, not by place.
    exported = run(profile, "darts:exporttile", *common, *members,
                   *[f"SUBSET_BINARIZED={path}" for path in reversed(prepared["OUTPUT_SUBSET_BINARIZED"])],
                   f"OUTPUT_FOLDER={with_subsets}")

    status, missing = missing_outputs(plain)
    subset_status, subset_missing = missing_outputs(with_subsets, subsets=SUBSETS)
    if parquet_supported():
        assert (status, missing) == (subset_status, subset_missing) == ("none", [])
    else:  # GDAL 3.6 without its Parquet driver and no pyarrow (this host): only the GeoParquet twins lack
        assert status == subset_status == "some"
        assert missing == parquet_of(darts_expected_files(DEFAULT_BANDS)) == [
            "prediction_segments.parquet", "prediction_extent.parquet"]
        assert subset_missing == parquet_of(darts_expected_files(DEFAULT_BANDS, SUBSETS)) == [
            "prediction_segments.parquet", "prediction_segments-with_tcvis.parquet",
            "prediction_segments-without_tcvis.parquet", "prediction_extent.parquet"]
    # A DARTS run with write_model_outputs checks for the subsets' files: the plain folder lacks them.
    status, missing = missing_outputs(plain, subsets=SUBSETS)
    assert status == "some" and "binarized-with_tcvis.tif" in missing and "probabilities-without_tcvis.tif" in missing
    # "metadata": DARTS' exporter writes darts_inference.json, but its check has no rule for that band and looks
    # for metadata.tif, which no DARTS export writes: with "metadata" among the bands, DARTS finds every folder,
    # its own too, incomplete by that one name.
    assert (with_subsets / "darts_inference.json").is_file()
    status, missing = missing_outputs(with_subsets, DEFAULT_BANDS + ["metadata"], SUBSETS)
    assert status == "some" and [name for name in missing if not name.endswith(".parquet")] == ["metadata.tif"]

    # The results name every file; the subsets' files hold the members' own results.
    assert written["OUTPUT_THUMBNAIL"] == str(plain / "thumbnail.jpg")
    assert written["OUTPUT_METADATA"] == str(plain / "darts_inference.json")
    assert "OUTPUT_SUBSET_PROBABILITIES" not in written
    assert exported["OUTPUT_SUBSET_PROBABILITIES"] == [str(with_subsets / f"probabilities-{s}.tif") for s in SUBSETS]
    assert exported["OUTPUT_SUBSET_BINARIZED"] == [str(with_subsets / f"binarized-{s}.tif") for s in SUBSETS]
    assert exported["OUTPUT_SUBSET_SEGMENTS"] == [str(with_subsets / f"prediction_segments-{s}.gpkg")
                                                  for s in SUBSETS]
    extent = read(prepared["OUTPUT_EXTENT"])
    for subset, binarized in zip(SUBSETS, prepared["OUTPUT_SUBSET_BINARIZED"]):
        expected = read(ensemble[subset])
        expected[extent == 0] = 255
        np.testing.assert_array_equal(read(with_subsets / f"probabilities-{subset}.tif"), expected)
        objects = read(binarized)
        np.testing.assert_array_equal(read(with_subsets / f"binarized-{subset}.tif"), objects)
        from darts_postprocessing.core import label_objects

        layer, rows = features(with_subsets / f"prediction_segments-{subset}.gpkg")
        assert layer == f"prediction_segments-{subset}" and len(rows) == label_objects(objects)[1] > 0
    assert not np.array_equal(read(with_subsets / "binarized-with_tcvis.tif"),
                              read(with_subsets / "binarized-without_tcvis.tif"))
    # The ensemble's own files are the same with or without the subsets.
    for name in ("probabilities.tif", "binarized.tif", "extent.tif"):
        np.testing.assert_array_equal(read(plain / name), read(with_subsets / name), err_msg=name)
    np.testing.assert_array_equal(pixels(plain / "thumbnail.jpg"), pixels(with_subsets / "thumbnail.jpg"))


def test_darts_inference_json_holds_this_runs_settings_in_darts_types(profile, ensemble, tmp_path):
    out = tmp_path / "out"
    prepared = run(profile, "darts:prepareexport", f"PROBABILITIES={ensemble['probabilities']}",
                   f"QUALITY_MASK={ensemble['quality']}", "THRESHOLD=0.45", "MASK_EROSION_SIZE=3",
                   "EDGE_EROSION_SIZE=5", "MIN_OBJECT_SIZE=12", "QUALITY_LEVEL=high_quality",
                   f"OUTPUT_BINARIZED={out / 'binarized.tif'}", f"OUTPUT_EXTENT={out / 'extent.tif'}")
    folder = tmp_path / "tile"
    exported = run(profile, "darts:exporttile", f"PROBABILITIES={ensemble['probabilities']}",
                   f"BINARIZED={prepared['OUTPUT_BINARIZED']}", f"EXTENT={prepared['OUTPUT_EXTENT']}",
                   f"OUTPUT_FOLDER={folder}")
    record = json.loads(Path(exported["OUTPUT_METADATA"]).read_text())
    assert list(record)[:13] == DARTS_INFERENCE_KEYS
    # The model's settings from DARTS' tags on the probabilities, the postprocessing's from prepareexport's run.
    assert record["DARTS_tileid"] == "20240715T213529_20240715T213531_T07WET"
    assert record["DARTS_modelfiles"] == ["with_tcvis.pt", "without_tcvis.pt"]
    assert [record[f"DARTS_{key}"] for key in ("tpiouter", "tpiinner", "patchsize", "overlap", "reflection")] == [
        100, 0, 1024, 256, 0]
    assert record["DARTS_binarizethreshold"] == 0.45 and type(record["DARTS_binarizethreshold"]) is float
    assert (record["DARTS_maskerosion"], record["DARTS_edgeerosion"], record["DARTS_mmu"]) == (3, 5, 12)
    assert all(type(record[f"DARTS_{key}"]) is int for key in ("maskerosion", "edgeerosion", "mmu", "tpiouter"))
    assert record["DARTS_qualitymask"] == "high_quality"
    # The run's export date, as in the files' tags; the plugin's other tags follow as text.
    tags = dataset_tags(exported["OUTPUT_PROBABILITIES"])
    assert record["DARTS_exportdate"] == tags["DARTS_exportdate"] != "2024-07-16 10:00:00+00:00"
    assert {key: value for key, value in record.items() if key not in DARTS_INFERENCE_KEYS} == {
        key: value for key, value in tags.items() if key.startswith("DARTS_") and key not in DARTS_INFERENCE_KEYS}
    assert record["DARTS_postprocessing"].startswith("darts:exporttile ")
    # The thumbnail says how it was made too, in its JPEG comment.
    from darts_postprocessing.core.files.tags import read_tags

    assert read_tags(exported["OUTPUT_THUMBNAIL"]) == {key: value for key, value in tags.items()
                                                        if key.startswith("DARTS_")}
    assert not [name for name in os.listdir(folder) if name.endswith(".aux.xml")]

    # Probabilities that DARTS did not make: no model settings, null; the tile id is the folder's name.
    plain = tmp_path / "plain.tif"
    write_tif(str(plain), read(ensemble["probabilities"]), nodata=255)
    prepared = run(profile, "darts:prepareexport", f"PROBABILITIES={plain}", f"QUALITY_MASK={ensemble['quality']}",
                   "THRESHOLD=0.55", f"OUTPUT_BINARIZED={out / 'plain-b.tif'}", f"OUTPUT_EXTENT={out / 'plain-e.tif'}")
    record = json.loads(Path(run(profile, "darts:exporttile", f"PROBABILITIES={plain}",
                                 f"BINARIZED={prepared['OUTPUT_BINARIZED']}", f"EXTENT={prepared['OUTPUT_EXTENT']}",
                                 f"OUTPUT_FOLDER={tmp_path / 'T06WVS'}")["OUTPUT_METADATA"]).read_text())
    assert record["DARTS_tileid"] == "T06WVS" and record["DARTS_binarizethreshold"] == 0.55
    assert (record["DARTS_maskerosion"], record["DARTS_edgeerosion"], record["DARTS_mmu"]) == (10, 10, 32)
    assert record["DARTS_qualitymask"] == "low_quality"
    assert all(record[f"DARTS_{key}"] is None
               for key in ("modelfiles", "tpiouter", "tpiinner", "patchsize", "overlap", "reflection"))


def test_ensemble_subsets_that_do_not_match_are_one_line_errors(provider, ensemble, tmp_path):
    out = tmp_path / "out"
    prepared = processing.run("darts:prepareexport", {
        "PROBABILITIES": ensemble["probabilities"], "QUALITY_MASK": ensemble["quality"], "MIN_OBJECT_SIZE": 10,
        "SUBSET_PROBABILITIES": [ensemble[subset] for subset in SUBSETS],
        "OUTPUT_BINARIZED": str(out / "b.tif"), "OUTPUT_EXTENT": str(out / "e.tif")})
    binarized = prepared["OUTPUT_SUBSET_BINARIZED"]
    base = {"PROBABILITIES": ensemble["probabilities"], "BINARIZED": prepared["OUTPUT_BINARIZED"],
            "EXTENT": prepared["OUTPUT_EXTENT"], "OUTPUT_FOLDER": str(tmp_path / "tile")}
    members = [ensemble[subset] for subset in SUBSETS]
    other, twice = str(tmp_path / "b-other.tif"), str(tmp_path / "again-with_tcvis.tif")
    gdal.Translate(other, binarized[0])
    gdal.Translate(twice, binarized[0])
    for extra, message in (
            ({"SUBSET_PROBABILITIES": members, "SUBSET_BINARIZED": binarized[:1]},
             "SUBSET_BINARIZED: no binarized raster of ensemble subset 'without_tcvis'"),
            ({"SUBSET_PROBABILITIES": members},
             "SUBSET_BINARIZED: no binarized raster of ensemble subset 'with_tcvis'"),
            ({"SUBSET_BINARIZED": binarized}, "SUBSET_BINARIZED: give the ensemble subsets' probabilities in "
                                              "SUBSET_PROBABILITIES too"),
            ({"SUBSET_PROBABILITIES": members, "SUBSET_BINARIZED": binarized + [other]},
             "SUBSET_BINARIZED: b-other.tif is of no ensemble subset"),
            ({"SUBSET_PROBABILITIES": members, "SUBSET_BINARIZED": binarized + [str(out / "b.tif")]},
             "SUBSET_BINARIZED: b.tif is of no ensemble subset"),
            ({"SUBSET_PROBABILITIES": members, "SUBSET_BINARIZED": binarized + [twice]},
             "SUBSET_BINARIZED: b-with_tcvis.tif and again-with_tcvis.tif are both of ensemble subset 'with_tcvis'")):
        with pytest.raises(QgsProcessingException, match=message.replace("(", r"\(")) as error:
            processing.run("darts:exporttile", {**base, **extra})
        assert "\n" not in str(error.value)
        assert not (tmp_path / "tile").exists() or not os.listdir(tmp_path / "tile")
    # A member on another grid is refused by name.
    small = str(tmp_path / "probabilities-with_tcvis.tif")
    gdal.Translate(small, ensemble["with_tcvis"], srcWin=[0, 0, 100, 100])
    with pytest.raises(QgsProcessingException, match="SUBSET_PROBABILITIES 'with_tcvis'"):
        processing.run("darts:exporttile", {**base, "SUBSET_PROBABILITIES": [small, members[1]],
                                            "SUBSET_BINARIZED": binarized})
    assert not (tmp_path / "tile").exists() or not os.listdir(tmp_path / "tile")


def test_a_model_chains_prepareexports_subsets_into_exporttile(provider, ensemble, tmp_path):
    """The two lists connect directly in a model: the members as one model input for both steps,
    prepareexport's OUTPUT_SUBSET_BINARIZED into exporttile's SUBSET_BINARIZED."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterMultipleLayers,
        QgsProcessingParameterRasterLayer,
    )

    model = QgsProcessingModelAlgorithm("ensemble tile", "DARTS tests")
    for parameter in (QgsProcessingParameterRasterLayer("probabilities", "Probabilities"),
                      QgsProcessingParameterRasterLayer("quality", "Quality"),
                      QgsProcessingParameterMultipleLayers("members", "Members", QgsProcessing.SourceType.TypeRaster)):
        model.addModelParameter(parameter, QgsProcessingModelParameter(parameter.name()))
    source = QgsProcessingModelChildParameterSource
    prepare = QgsProcessingModelChildAlgorithm("darts:prepareexport")
    prepare.setChildId("prepare")
    for name, value in (("PROBABILITIES", "probabilities"), ("QUALITY_MASK", "quality"),
                        ("SUBSET_PROBABILITIES", "members")):
        prepare.addParameterSources(name, [source.fromModelParameter(value)])
    prepare.addParameterSources("MIN_OBJECT_SIZE", [source.fromStaticValue(10)])
    export = QgsProcessingModelChildAlgorithm("darts:exporttile")
    export.setChildId("export")
    export.addParameterSources("PROBABILITIES", [source.fromModelParameter("probabilities")])
    export.addParameterSources("SUBSET_PROBABILITIES", [source.fromModelParameter("members")])
    for name, output in (("BINARIZED", "OUTPUT_BINARIZED"), ("EXTENT", "OUTPUT_EXTENT"),
                         ("SUBSET_BINARIZED", "OUTPUT_SUBSET_BINARIZED")):
        export.addParameterSources(name, [source.fromChildOutput("prepare", output)])
    folder = QgsProcessingModelOutput("tile", "tile")  # the model parameter is named after the description
    folder.setChildOutputName("OUTPUT_FOLDER")
    export.setModelOutputs({"tile": folder})
    model.addChildAlgorithm(prepare)
    model.addChildAlgorithm(export)
    model.updateDestinationParameters()
    target = tmp_path / "T07WET"
    results = processing.run(model, {"probabilities": ensemble["probabilities"], "quality": ensemble["quality"],
                                     "members": [ensemble[subset] for subset in SUBSETS], "tile": str(target)})
    assert Path(results["tile"]) == target
    status, missing = missing_outputs(target, subsets=SUBSETS)
    assert missing == ([] if parquet_supported() else parquet_of(darts_expected_files(DEFAULT_BANDS, SUBSETS)))
    assert status == ("none" if parquet_supported() else "some")
    for subset in SUBSETS:
        expected = read(ensemble[subset])
        expected[read(target / "extent.tif") == 0] = 255
        np.testing.assert_array_equal(read(target / f"probabilities-{subset}.tif"), expected)
