"""Object labels, per-object statistics and the counts behind the report, against the
scikit-image/numpy reference, on random and hand-made tiles."""

import numpy as np
import pytest

import reference
from cases import ALL as CASES
from darts_postprocessing.core import label_objects, object_statistics, prepare_export
from darts_postprocessing.core.api import binarize
from tiles import random_tile

SEEDS = range(12)


def binary_tiles():
    for seed in SEEDS:
        probs, _ = random_tile(seed)
        yield f"random-{seed}", np.nan_to_num(probs) > 0.5, probs
    for name, case in CASES.items():
        probs, _ = case()
        yield name, np.nan_to_num(probs) > 0.5, probs


@pytest.mark.parametrize("name,binary,values", list(binary_tiles()), ids=lambda v: v if isinstance(v, str) else "")
def test_labels_and_statistics_equal_reference(name, binary, values):
    labels, count = label_objects(binary)
    expected_labels, expected = reference.object_table(binary, values)
    np.testing.assert_array_equal(labels, expected_labels)
    assert count == expected_labels.max() and labels.dtype == np.int32
    table = object_statistics(binary, values)
    assert set(table) == {"Region_ID", "npixel", "min", "max", "mean", "median", "std"}
    np.testing.assert_array_equal(table["Region_ID"], np.arange(1, count + 1))
    np.testing.assert_array_equal(table["npixel"], expected["npixel"] if count else [])
    for statistic in ("min", "max", "mean", "median", "std"):
        if count:
            np.testing.assert_allclose(table[statistic], expected[statistic], rtol=1e-9, atol=1e-12, err_msg=statistic)


def test_diagonal_contacts_are_one_object_and_nan_is_left_out():
    binary = np.zeros((6, 6), bool)
    binary[0, 0] = binary[1, 1] = binary[2, 2] = True  # a diagonal chain: one object
    binary[4, 4] = binary[4, 5] = True
    values = np.full((6, 6), np.nan)
    values[0, 0], values[1, 1], values[2, 2] = 0.2, np.nan, 0.8
    table = object_statistics(binary, values)
    np.testing.assert_array_equal(table["npixel"], [3, 2])
    assert table["min"][0] == 0.2 and table["max"][0] == 0.8 and table["median"][0] == 0.5
    assert table["std"][0] == pytest.approx(0.3)
    assert np.isnan(table["mean"][1])  # no finite value inside


def test_empty_and_full_rasters():
    assert label_objects(np.zeros((5, 7), bool))[1] == 0
    assert object_statistics(np.zeros((5, 7), bool), np.zeros((5, 7)))["npixel"].size == 0
    labels, count = label_objects(np.ones((5, 7), np.uint8))
    assert count == 1 and (labels == 1).all()
    with pytest.raises(ValueError, match="shape"):
        object_statistics(np.ones((5, 7)), np.ones((7, 5)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size_connectivity", [8, 4])
def test_object_counts_equal_reference(seed, size_connectivity):
    probs, quality = random_tile(seed)
    counts = {}
    result = prepare_export({"probabilities": probs, "quality_data_mask": quality}, 0.4, 2, 6, 1, device="cpu",
                            size_connectivity=size_connectivity, object_counts=counts)
    expected = reference.object_counts(probs, 0.4, 6, result["extent"], size_connectivity)
    assert counts == {"binarized_segmentation": expected}
    if size_connectivity == 8:  # every object is then kept or removed for exactly one reason
        kept = label_objects(result["binarized_segmentation"])[1]
        assert kept == expected["objects"] - expected["removed_at_boundary"] - expected["removed_too_small"]


def test_binarize_is_unchanged_by_counting():
    probs, quality = random_tile(3)
    counted = prepare_export({"probabilities": probs, "quality_data_mask": quality}, quality_level=1, device="cpu",
                             object_counts={})
    plain = prepare_export({"probabilities": probs, "quality_data_mask": quality}, quality_level=1, device="cpu")
    np.testing.assert_array_equal(counted["binarized_segmentation"], plain["binarized_segmentation"])
    assert binarize(probs, 0.5, 3, quality).dtype == bool
