"""One validation rule per kind of input, the same in every algorithm (issue 20, item 5),
through qgis_process as a user meets it: counts, complex rasters, percent on fractions,
THRESHOLDS, EXCLUDE's errors and delimited-text polygons. Each case failed (or passed
silently) on the code before."""

import shutil

import numpy as np
import pytest
import sample_region as scene
from osgeo import gdal, ogr
from qgis_cli import run_text
from reading import open_read_only, pixels
import os
from darts_postprocessing.core import erode_mask
from qgis import processing
from qgis.core import QgsProcessingException
from rasters import read
from sample_tile import ORIGIN, PIXEL, write_tif
from writing import write_raster

gdal.UseExceptions()
ogr.UseExceptions()


def write(path, array, kind=gdal.GDT_Byte, nodata=None):
    return write_raster(path, array, (500000.0, 10.0, 0.0, 7000000.0, 0.0, -10.0), nodata=nodata, data_type=kind)


def refused(profile, tmp_path, algorithm, *arguments, words):
    """One ERROR line holding `words`, a non-zero exit, no traceback, no output written."""
    before = sorted(path.name for path in tmp_path.iterdir())
    code, text = run_text(profile, f"darts:{algorithm}", "--", *arguments)
    errors = [line for line in text.splitlines() if line.startswith("ERROR")]
    assert code != 0 and len(errors) == 1 and "Traceback" not in text, text
    assert words in errors[0], (words, errors[0])
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    return errors[0]


@pytest.fixture(scope="module")
def rasters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    fractions = np.full((60, 60), 0.2, np.float32)
    fractions[10:30, 10:30] = 0.9
    counts = np.full((60, 60), 5, np.int16)
    counts[:5] = -2
    return {"fractions": write(folder / "fractions.tif", fractions, gdal.GDT_Float32),
            "complex": write(folder / "complex.tif", fractions.astype(np.complex64), gdal.GDT_CFloat32),
            "quality": write(folder / "quality.tif", np.full((60, 60), 2, np.uint8)),
            "negative": write(folder / "negative.tif", counts, gdal.GDT_Int16),
            "fractional": write(folder / "fractional.tif", np.full((60, 60), 2.5, np.float32), gdal.GDT_Float32)}


def test_counts_are_non_negative_integers(profile, rasters, tmp_path):
    for name, shown in (("negative", "-2"), ("fractional", "2.5")):
        line = refused(profile, tmp_path, "qualitymask", f"INPUT={rasters[name]}", "SOURCE=observations",
                       f"OUTPUT={tmp_path / 'quality.tif'}", words="observation counts are whole numbers of 0 or more")
        assert rasters[name] in line and shown in line


def test_complex_rasters_are_refused_in_every_algorithm(profile, rasters, tmp_path):
    for algorithm, arguments in (
            ("prepareexport", [f"PROBABILITIES={rasters['complex']}", f"QUALITY_MASK={rasters['quality']}",
                               f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}"]),
            ("binarize", [f"PROBABILITIES={rasters['complex']}", f"OUTPUT={tmp_path / 'b.tif'}"]),
            ("qualitymask", [f"INPUT={rasters['complex']}", "SOURCE=observations", f"OUTPUT={tmp_path / 'q.tif'}"]),
            ("erodemask", [f"MASK={rasters['complex']}", "SIZE=1", f"OUTPUT={tmp_path / 'q.tif'}"])):
        refused(profile, tmp_path, algorithm, *arguments, words="holds complex numbers (CFloat32)")


def test_percent_on_fractions_is_warned(profile, rasters, tmp_path):
    code, text = run_text(profile, "darts:binarize", "--", f"PROBABILITIES={rasters['fractions']}", "PROBABILITY_SCALE=percent",
                     f"OUTPUT={tmp_path / 'b.tif'}")
    assert code == 0, text
    assert "is read as percent (0..100), but none of its values is above 0.9" in text
    code, text = run_text(profile, "darts:binarize", "--", f"PROBABILITIES={rasters['fractions']}",
                          f"OUTPUT={tmp_path / 'c.tif'}")
    assert code == 0 and "read as percent" not in text, text
    tiles = tmp_path / "tiles"
    scene.region(str(tiles))
    probabilities = tiles / "tile_A" / "probabilities.tif"
    data = pixels(probabilities)
    probabilities.unlink()
    with open_read_only(tiles / "tile_A" / "quality_data_mask.tif") as source:
        grid, crs = source.GetGeoTransform(), source.GetProjection()
    dataset = gdal.GetDriverByName("GTiff").Create(str(probabilities), data.shape[1], data.shape[0], 1,
                                                   gdal.GDT_Float32)
    dataset.SetGeoTransform(grid)
    dataset.SetProjection(crs)
    dataset.GetRasterBand(1).WriteArray((data / 100).astype(np.float32))
    dataset = None
    code, text = run_text(profile, "darts:processtiles", "--", f"INPUT_FOLDER={tiles}", "PROBABILITY_SCALE=percent", "WORKERS=1",
                     f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert code == 0, text
    assert "Tile tile_A: tile_A/probabilities.tif is read as percent" in text
    assert "Tile tile_B: tile_B" not in text  # uint8 percent up to 90: no doubt


def test_thresholds_refuse_a_decimal_comma(profile, rasters, tmp_path):
    line = refused(profile, tmp_path, "prepareexport", f"PROBABILITIES={rasters['fractions']}", "THRESHOLDS=0,1",
                   f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}",
                   words="has no decimal point")
    assert "write 0.1 for one threshold, or 0.0,1.0 for two" in line
    code, text = run_text(profile, "darts:prepareexport", "--", f"PROBABILITIES={rasters['fractions']}", "THRESHOLDS=0.4, 0.6",
                     f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}")
    assert code == 0, text


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    folder = tmp_path_factory.mktemp("region")
    return {**scene.region(str(folder / "tiles")), "inputs": str(folder / "tiles"), "folder": folder}


def test_exclude_errors_say_what_is_wrong(profile, region, tmp_path):
    raster = tmp_path / "raster.tif"
    shutil.copy(f"{region['inputs']}/tile_A/quality_data_mask.tif", raster)
    water = scene.exclusion_polygons(str(tmp_path / "water.gpkg"), [region["slumps"]["a_only"][:2]], epsg=3413)
    output = f"OUTPUT={tmp_path / 'out' / 'map.gpkg'}"
    for value, words in ((raster, "must be polygons: tiles lie on different grids"),
                         (tmp_path / "missing.gpkg", "does not exist"),
                         (f"{water}|layername=lakes", "has no layer 'lakes' (has: water)")):
        refused(profile, tmp_path, "processtiles", f"INPUT_FOLDER={region['inputs']}", f"EXCLUDE={value}", output,
                "WORKERS=1", words=words)
    refused(profile, tmp_path, "prepareexport", f"PROBABILITIES={region['inputs']}/tile_A/probabilities.tif",
            f"EXCLUDE={tmp_path / 'missing.gpkg'}", f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}",
            f"OUTPUT_EXTENT={tmp_path / 'e.tif'}", words="does not exist")


def test_delimited_text_polygons_are_accepted(profile, region, tmp_path):
    """A CSV of WKT polygons (in EPSG:3413 coordinates, no CRS: declared by none, so taken in
    each tile's CRS, warned) was refused as 'unknown(any) geometries'."""
    x, y, _ = region["slumps"]["a_only"]
    utm = scene.to_crs([(x, y)], 3413, 32607)[0]
    square = f"POLYGON (({utm[0] - 150} {utm[1] - 150}, {utm[0] + 150} {utm[1] - 150}, {utm[0] + 150} " \
             f"{utm[1] + 150}, {utm[0] - 150} {utm[1] + 150}, {utm[0] - 150} {utm[1] - 150}))"
    csv = tmp_path / "water.csv"
    csv.write_text(f'id,WKT\n1,"{square}"\n')
    code, text = run_text(profile, "darts:processtiles", "--", f"INPUT_FOLDER={region['inputs']}", f"EXCLUDE={csv}", "WORKERS=1",
                     f"OUTPUT={tmp_path / 'map.gpkg'}")
    assert code == 0, text
    assert "the polygons have no CRS" in text
    with open_read_only(tmp_path / "map.gpkg", "vector") as dataset:
        assert dataset.GetLayerByName("map").GetFeatureCount() == 5  # the slump under the square in tile A is gone


def contents(path):
    with open(path, "rb") as file:
        return file.read()


# -- outputs never overwrite inputs, however the path is spelt ----------------------------------

def test_input_through_a_symlink_is_not_overwritten(provider, sample, tmp_path):
    """The input is given as a symlink, the output as the real file: the same file."""
    link = tmp_path / "link.tif"
    os.symlink(sample["probabilities"], link)
    before = contents(sample["probabilities"])
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:binarize", {"PROBABILITIES": str(link), "OUTPUT": sample["probabilities"]})
    assert contents(sample["probabilities"]) == before and os.path.islink(link)
    assert not [f for f in os.listdir(os.path.dirname(sample["probabilities"])) if "partial" in f]


def test_output_through_a_symlink_is_refused(provider, sample, tmp_path):
    """The output is a symlink to the input: writing it would replace the link (and the input
    as the user sees it through it)."""
    link = tmp_path / "link.tif"
    os.symlink(sample["probabilities"], link)
    before = contents(sample["probabilities"])
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:binarize", {"PROBABILITIES": sample["probabilities"], "OUTPUT": str(link)})
    assert contents(sample["probabilities"]) == before and os.path.islink(link)


def test_input_through_dotdot_is_not_overwritten(provider, sample, tmp_path):
    folder = os.path.dirname(sample["probabilities"])
    (tmp_path / "elsewhere").mkdir()
    roundabout = os.path.join(str(tmp_path / "elsewhere"), "..", os.path.basename(folder),
                              os.path.basename(sample["quality"]))
    assert os.path.samefile(roundabout, sample["quality"]) and roundabout != sample["quality"]
    before = contents(sample["quality"])
    # The input spelt with `..`, the output plainly ...
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:prepareexport", {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": roundabout,
                                               "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
                                               "OUTPUT_EXTENT": sample["quality"]})
    # ... and the other way round.
    with pytest.raises(QgsProcessingException, match="also an input"):
        processing.run("darts:prepareexport", {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": sample["quality"],
                                               "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": roundabout})
    assert contents(sample["quality"]) == before
    assert not os.path.exists(tmp_path / "b.tif")


# -- the grid check compares both coordinates of the origin ------------------------------------

@pytest.mark.parametrize("shift", [(0.0, 100.0), (0.0, -PIXEL), (0.0, 0.5 * PIXEL)])
def test_grids_shifted_only_in_y_are_refused(provider, sample, tmp_path, shift):
    quality = read(sample["quality"])
    path = str(tmp_path / "quality_shifted.tif")
    write_tif(path, quality, origin=(ORIGIN[0] + shift[0], ORIGIN[1] + shift[1]))
    with pytest.raises(QgsProcessingException, match="extent differs"):
        processing.run("darts:prepareexport", {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": path,
                                               "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
                                               "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    assert not os.path.exists(tmp_path / "b.tif") and not os.path.exists(tmp_path / "e.tif")


def test_y_origin_within_the_tolerance_is_accepted(provider, sample, tmp_path):
    """A y origin off by rounding (well under 1/1000 pixel) is the same grid."""
    path = str(tmp_path / "quality_rounded.tif")
    write_tif(path, read(sample["quality"]), origin=(ORIGIN[0], ORIGIN[1] + 1e-4 * PIXEL))
    results = processing.run("darts:prepareexport", {"PROBABILITIES": sample["probabilities"], "QUALITY_MASK": path,
                                                     "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
                                                     "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    assert os.path.exists(results["OUTPUT_BINARIZED"])


# -- erodemask: the quality raster's nodata is invalid -----------------------------------------

@pytest.mark.parametrize("nodata", [255, 1])
def test_erodemask_reads_quality_nodata_as_invalid(provider, tmp_path, nodata):
    """Nodata pixels (here 255, or 1 = a value a quality mask could hold) count as invalid:
    they and a disk around them leave the eroded mask."""
    quality = np.full((40, 50), 2, np.uint8)
    quality[5:8, 30:33] = 0  # invalid
    quality[20, 10] = nodata  # no data
    quality[30:32, 40:42] = nodata
    path = str(tmp_path / "quality.tif")
    write_tif(path, quality, nodata=nodata)
    size = 3
    results = processing.run("darts:erodemask", {"MASK": path, "QUALITY_LEVEL": "low_quality", "SIZE": size,
                                                 "EDGE_SIZE": 0, "OUTPUT": str(tmp_path / "eroded.tif")})
    eroded = read(results["OUTPUT"])
    decoded = np.where(quality == nodata, 0, quality)
    np.testing.assert_array_equal(eroded, erode_mask(decoded >= 1, size, "cpu", edge_size=0))
    assert eroded[20, 10] == 0 and eroded[20, 10 + size] == 0 and eroded[20, 10 + size + 1] == 1
    assert eroded[31, 41] == 0
    # Without nodata the same pixels are valid (255 would then be refused as no quality value).
    if nodata == 1:
        plain = str(tmp_path / "plain.tif")
        write_tif(plain, quality)
        kept = read(processing.run("darts:erodemask", {"MASK": plain, "SIZE": size, "EDGE_SIZE": 0,
                                                       "OUTPUT": str(tmp_path / "plain_eroded.tif")})["OUTPUT"])
        assert kept[20, 10] == 1
