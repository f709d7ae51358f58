"""DARTS' uint8 percent at a threshold: v passes t when v >= 100 * t (semantics.md), in memory,
chunked on dask and with several thresholds, against the reference on the raw percent values;
and DARTS' own binarized.tif comes back from its probabilities.tif."""

import numpy as np
import pytest
import reference
from darts_postprocessing.core import binarize, prepare_export, prepare_export_thresholds
from darts_postprocessing.core.kernels.encodings import decode_probabilities
from tiles import random_tile
from darts_postprocessing.core import to_percent

THRESHOLDS = [0.0, 0.01, 0.29, 0.5, 0.505, 0.57, 0.99, 1.0]


def random_percent(seed, shape=(96, 128)):
    """(DARTS' uint8 percent with nodata 255, quality): values crowd around 50 and the other
    thresholds, so pixels equal to 100 * t are common."""
    probs, quality = random_tile(seed, shape)
    percent = np.where(np.isnan(probs), 255, np.nan_to_num(probs * np.float32(100)).astype(np.uint8)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    spots = rng.random(shape) < 0.2
    percent[spots] = rng.choice([0, 1, 29, 50, 51, 57, 99, 100], size=int(spots.sum()))
    return percent, quality


def decoded(percent):
    return decode_probabilities(percent, 255, "probabilities", "percent")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threshold", THRESHOLDS)
def test_binarize_percent_equals_the_reference_on_raw_percent(seed, threshold):
    percent, quality = random_percent(seed)
    mask = reference.erode_mask(quality >= 1, 2)
    got = binarize(decoded(percent), threshold, 3, mask, "cpu", probability_scale="percent")
    np.testing.assert_array_equal(got, reference.binarize(percent, threshold, 3, mask))


def test_a_pixel_stored_as_50_passes_0_5_only_in_percent():
    percent = np.full((5, 5), 255, np.uint8)
    percent[1:4, 1:4] = 50
    mask = np.ones(percent.shape, np.uint8)
    assert binarize(decoded(percent), 0.5, 1, mask, "cpu", probability_scale="percent").sum() == 9
    assert binarize(decoded(percent), 0.5, 1, mask, "cpu").sum() == 0  # the same floats as fractions: p > t
    assert binarize(decoded(percent), 0.505, 1, mask, "cpu", probability_scale="percent").sum() == 0  # 50.5 > 50


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("boundary", ["remove", "clip"])
def test_prepare_export_percent_in_memory_and_on_dask_equal_the_reference(seed, boundary):
    import dask.array as da

    percent, quality = random_percent(seed)
    options = dict(mask_erosion_size=2, min_object_size=4, quality_level=1, boundary=boundary,
                   probability_scale="percent")
    tile = {"probabilities": decoded(percent), "quality_data_mask": quality}
    lazy_tile = {name: da.from_array(array, chunks=(37, 41)) for name, array in tile.items()}
    several = prepare_export_thresholds(tile, THRESHOLDS, device="cpu", **options)
    lazy = prepare_export_thresholds(lazy_tile, THRESHOLDS, **options)
    for threshold in THRESHOLDS:
        extent, expected, masked = reference.prepare_export(percent, quality, threshold, 2, 4, 1, boundary=boundary)
        one = prepare_export(tile, threshold, device="cpu", **{k: v for k, v in options.items()})
        for result in (one, several[threshold], {k: v.compute() for k, v in lazy[threshold].items()}):
            np.testing.assert_array_equal(result["binarized_segmentation"], expected)
            np.testing.assert_array_equal(result["extent"], extent)
            np.testing.assert_array_equal(result["probabilities"], masked)


def test_probability_scale_is_checked():
    with pytest.raises(ValueError, match="probability_scale"):
        binarize(np.zeros((3, 3), np.float32), 0.5, 1, np.ones((3, 3), np.uint8), probability_scale="percentage")
    with pytest.raises(ValueError, match="probability_scale"):
        prepare_export({"probabilities": np.zeros((3, 3), np.float32), "quality_data_mask": np.ones((3, 3), np.uint8)},
                       probability_scale="auto")


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5, 6])  # smooth and noisy tiles (kind 3 has no values near 0.5)
def test_darts_binarized_tif_is_reproduced_from_its_probabilities_tif(seed):
    """DARTS binarizes float probabilities (p > t, clipped at the extent, sizes counted with
    4-connectivity), then exports int(p * 100) as uint8 (NaN -> 255). Binarizing that file at
    DARTS' threshold inside its extent (probabilities != 255) gives DARTS' binarized.tif back;
    reading the percent as v / 100 > t (the rule before) loses every pixel stored as 50."""
    probs, quality = random_tile(seed, (128, 128))
    probs = np.clip(probs * np.float32(0.2) + np.float32(0.42), 0, 1).astype(np.float32)  # many values near 0.5
    darts = prepare_export({"probabilities": probs, "quality_data_mask": quality}, 0.5, 3, 8, 1, device="cpu",
                           boundary="clip", size_connectivity=4)
    exported = np.where(np.isnan(darts["probabilities"]), 255,
                        np.nan_to_num(darts["probabilities"] * np.float32(100)).astype(np.uint8)).astype(np.uint8)
    binarized_tif = darts["binarized_segmentation"]
    extent = (exported != 255).astype(np.uint8) * 2  # the extent DARTS writes as prediction_extent.gpkg
    tile = {"probabilities": decoded(exported), "quality_data_mask": extent}
    again = prepare_export(tile, 0.5, 0, 8, "high_quality", device="cpu", edge_erosion_size=0, boundary="clip",
                           size_connectivity=4, probability_scale="percent")
    np.testing.assert_array_equal(again["binarized_segmentation"], binarized_tif)
    before = prepare_export(tile, 0.5, 0, 8, "high_quality", device="cpu", edge_erosion_size=0, boundary="clip",
                            size_connectivity=4)
    assert (binarized_tif & ~before["binarized_segmentation"] & (exported == 50)).any()


def test_to_percent_refuses_uint8_above_100():
    percent = np.array([[0, 55, 100, 255]], np.uint8)
    np.testing.assert_array_equal(to_percent(percent), percent)
    with pytest.raises(ValueError, match="101"):
        to_percent(np.array([[0, 101, 255]], np.uint8))
