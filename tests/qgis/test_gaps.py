"""Plugin cases no test covered, each able to fail for a plausible bug: an input reached
through a symlink or `..` must still never be overwritten, a cancel after the last progress
step must still discard the outputs, the grid check must compare the y origin, and
darts:erodemask must read a quality raster's nodata as invalid."""

import os

import numpy as np
import pytest
from darts_postprocessing.core import erode_mask
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException, QgsProcessingFeedback
from rasters import read
from sample_tile import ORIGIN, PIXEL, write_tif

gdal.UseExceptions()

CANCELED = "Canceled: no output was written."


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


# -- cancel after the last progress step -------------------------------------------------------

@pytest.mark.parametrize("algorithm,parameters", [
    ("darts:prepareexport", lambda s, t: {"PROBABILITIES": s["probabilities"], "QUALITY_MASK": s["quality"],
                                          "OUTPUT_BINARIZED": str(t / "b.tif"), "OUTPUT_EXTENT": str(t / "e.tif"),
                                          "OUTPUT_POLYGONS": str(t / "p.gpkg"), "OUTPUT_REPORT": str(t / "r.html")}),
    ("darts:qualitymask", lambda s, t: {"INPUT": s["quality"], "SOURCE": "observations", "OUTPUT": str(t / "q.tif")}),
])
def test_cancel_after_the_last_progress_step_writes_nothing(provider, sample, tmp_path, algorithm, parameters):
    """Cancel once the progress bar is at its last step (100 %), after the algorithm's own
    last cancel check: the run still ends canceled, with every output discarded (only the
    check after execute() sees this cancel)."""
    last = 100
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda value: value >= last and feedback.cancel())
    with pytest.raises(QgsProcessingException, match=CANCELED):
        processing.run(algorithm, parameters(sample, tmp_path), feedback=feedback)
    assert feedback.isCanceled()
    assert os.listdir(tmp_path) == ["input"]
    assert sorted(os.listdir(tmp_path / "input")) == ["probabilities.tif", "quality_data_mask.tif"]


def test_a_run_without_cancel_at_the_same_step_writes_everything(provider, sample, tmp_path):
    """The control for the test above: the same run, not canceled, writes its outputs."""
    results = processing.run("darts:qualitymask", {"INPUT": sample["quality"], "SOURCE": "observations",
                                                   "OUTPUT": str(tmp_path / "q.tif")})
    assert os.path.exists(results["OUTPUT"])


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
