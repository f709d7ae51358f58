"""Cases no core test covered, each able to fail for a plausible bug (the mutants of the
reliability issue that passed the suite): the size filter at min_object_size=2, a threshold
of exactly 1.0, -0.0 in the float statistics, areas on rotated grids, and export_tile's
nodata outside the extent (needs GDAL: skipped without osgeo)."""

import math

import numpy as np
import pytest
from darts_postprocessing.core import binarize, object_areas, object_statistics, prepare_export

# -- the size filter at its smallest effective size ------------------------------------------

@pytest.mark.parametrize("size_connectivity", [8, 4])
def test_min_object_size_2_removes_single_pixels_and_keeps_pairs(size_connectivity):
    """min_object_size=2 is the first size that filters: single pixels go, pairs stay (a
    guard `min_object_size > 2` instead of `> 1` would keep the single pixels)."""
    probs = np.zeros((5, 7), np.float32)
    probs[0, 0] = 0.9  # one pixel: removed
    probs[2, 2:4] = 0.9  # two pixels side by side: kept
    probs[4, 6] = 0.9  # one pixel: removed
    mask = np.ones(probs.shape, np.uint8)
    result = binarize(probs, 0.5, 2, mask, device="cpu", size_connectivity=size_connectivity)
    expected = np.zeros(probs.shape, bool)
    expected[2, 2:4] = True
    np.testing.assert_array_equal(result, expected)
    # ... and 1 keeps every object, as 0 does.
    for size in (0, 1):
        assert binarize(probs, 0.5, size, mask, device="cpu").sum() == 4


def test_min_object_size_2_in_prepare_export_counts_the_removed():
    probs = np.zeros((6, 6), np.float32)
    probs[1, 1] = 0.8
    probs[3, 3:5] = 0.8
    counts = {}
    out = prepare_export({"probabilities": probs, "quality_data_mask": np.full(probs.shape, 2, np.uint8)},
                         min_object_size=2, quality_level=0, device="cpu", object_counts=counts)
    assert out["binarized_segmentation"].sum() == 2 and not out["binarized_segmentation"][1, 1]
    assert counts["binarized_segmentation"] == {"objects": 2, "removed_at_boundary": 0, "removed_too_small": 1}


# -- a threshold of exactly 1.0 ----------------------------------------------------------------

def test_threshold_1_is_accepted_and_finds_nothing():
    """1.0 is a valid threshold (the range is [0, 1] inclusive) and `p > 1.0` holds for no
    probability, not even 1.0 itself (a `>=` comparison would keep the certain pixels)."""
    probs = np.ones((4, 4), np.float32)
    probs[0, 0] = 0.999
    mask = np.ones(probs.shape, np.uint8)
    assert not binarize(probs, 1.0, 0, mask, device="cpu").any()
    out = prepare_export({"probabilities": probs, "quality_data_mask": np.full(probs.shape, 2, np.uint8)},
                         bin_threshold=1.0, min_object_size=0, device="cpu")
    assert not out["binarized_segmentation"].any()
    # Just below 1.0 the certain pixels are objects: the threshold is really applied.
    assert binarize(probs, 0.9995, 0, mask, device="cpu").sum() == 15
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        binarize(probs, 1.0000001, 0, mask, device="cpu")


def test_threshold_0_keeps_every_positive_probability():
    probs = np.array([[0.0, 0.01, 0.0], [0.0, 0.0, 0.0]], np.float32)
    assert binarize(probs, 0.0, 0, np.ones(probs.shape, np.uint8), device="cpu").sum() == 1


# -- -0.0 in the float statistics --------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_negative_zero_sorts_as_zero_in_the_statistics(dtype):
    """-0.0 is a probability of 0: its float32 bit pattern (sign bit set) must not sort it
    after every positive value (the packed-key sort turns -0.0 into 0.0 first)."""
    binary = np.array([[1, 1, 1, 0, 1, 1]], np.uint8)
    values = np.array([[-0.0, 0.5, 0.25, 0.0, 0.75, -0.0]], dtype)
    table = object_statistics(binary, values)
    np.testing.assert_array_equal(table["npixel"], [3, 2])
    np.testing.assert_array_equal(table["min"], [0.0, 0.0])
    np.testing.assert_array_equal(table["max"], [0.5, 0.75])
    np.testing.assert_array_equal(table["median"], [0.25, 0.375])
    np.testing.assert_allclose(table["mean"], [0.25, 0.375])
    np.testing.assert_allclose(table["std"], [np.std([0.0, 0.5, 0.25]), 0.375])


def test_statistics_do_not_depend_on_the_order_of_negative_zero():
    binary = np.ones((1, 4), np.uint8)
    for values in ([-0.0, 0.2, 0.4, 0.1], [0.2, 0.4, 0.1, -0.0], [0.2, -0.0, 0.4, 0.1]):
        table = object_statistics(binary, np.array([values], np.float32))
        assert (table["min"][0], table["max"][0]) == (0.0, np.float32(0.4))
        assert table["median"][0] == pytest.approx((0.1 + 0.2) / 2)


# -- areas on rotated and sheared grids --------------------------------------------------------

@pytest.mark.parametrize("degrees", [30.0, 45.0, 90.0])
def test_areas_on_a_rotated_grid_are_the_pixel_area(degrees):
    """A 10 m grid rotated by any angle still has 100 m² pixels: the area is |det| of the
    geotransform's 2x2 part, not dx * dy alone (which ignores the rotation terms)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    geotransform = (500000.0, 10 * cos, 10 * sin, 7000000.0, 10 * sin, -10 * cos)
    binary = np.zeros((6, 8), np.uint8)
    binary[1, 1:4] = 1  # 3 pixels
    binary[4:6, 5:7] = 1  # 4 pixels
    np.testing.assert_allclose(object_areas(binary, geotransform), [300.0, 400.0], rtol=1e-9)


def test_areas_on_a_sheared_grid():
    # Columns 10 m apart along x, rows 5 m apart along y but shifted 3 m in x per row:
    # parallelogram pixels of 10 * 5 = 50 m² (shear does not change the area).
    geotransform = (0.0, 10.0, 3.0, 0.0, 0.0, -5.0)
    binary = np.ones((2, 3), np.uint8)
    np.testing.assert_allclose(object_areas(binary, geotransform), [300.0])
    # A genuinely rotated-and-scaled grid: x' = 2x - 1y, y' = 1x + 3y -> |det| = 7.
    np.testing.assert_allclose(object_areas(np.ones((1, 1), np.uint8), (0.0, 2.0, -1.0, 0.0, 1.0, 3.0)), [7.0])


# -- export_tile: probabilities outside the extent are nodata ----------------------------------

def test_export_tile_writes_nodata_outside_the_extent(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import export_tile
    from darts_postprocessing.core.files.gdal import open_read_only

    probs = np.full((20, 30), 0.42, np.float32)
    probs[0, 0] = np.nan
    extent = np.ones(probs.shape, np.uint8)
    extent[:, :10] = 0  # a band outside the extent, with valid probabilities under it
    extent[15:, 20:] = 0
    binarized = np.zeros(probs.shape, bool)
    binarized[5:8, 12:15] = True
    tile = {"probabilities": probs, "binarized_segmentation": binarized, "extent": extent}
    paths = export_tile(tile, str(tmp_path / "tile"), (600000.0, 10.0, 0.0, 7800000.0, 0.0, -10.0), 32606)
    with open_read_only(paths["probabilities"]) as dataset:
        band = dataset.GetRasterBand(1)
        written = band.ReadAsArray()
        assert band.GetNoDataValue() == 255
    np.testing.assert_array_equal(written[extent == 0], 255)
    np.testing.assert_array_equal(written[extent == 1], 42)
    # The input tile is left as it was.
    assert np.isnan(probs[0, 0]) and (probs[extent == 0][1:] == np.float32(0.42)).all()


def test_export_tile_uint8_percent_gets_nodata_outside_the_extent(tmp_path):
    pytest.importorskip("osgeo.gdal", reason="GDAL's Python bindings (osgeo) are not installed here")
    from darts_postprocessing.core import export_tile
    from darts_postprocessing.core.files.gdal import open_read_only

    percent = np.full((10, 10), 70, np.uint8)
    extent = np.zeros(percent.shape, np.uint8)
    extent[2:8, 2:8] = 1
    tile = {"probabilities": percent, "binarized_segmentation": np.zeros(percent.shape, bool), "extent": extent}
    paths = export_tile(tile, str(tmp_path / "tile"), (0.0, 1.0, 0.0, 10.0, 0.0, -1.0), 32606)
    with open_read_only(paths["probabilities"]) as dataset:
        written = dataset.GetRasterBand(1).ReadAsArray()
    np.testing.assert_array_equal(written, np.where(extent == 1, 70, 255))
    assert (percent == 70).all()
