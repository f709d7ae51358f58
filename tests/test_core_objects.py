"""Object labels, per-object statistics and the counts behind the report, against the
scikit-image/numpy reference, on random and hand-made tiles."""

import numpy as np
import pytest
import reference
from cases import ALL as CASES
from darts_postprocessing.core import label_objects, object_statistics, prepare_export
from darts_postprocessing.core.kernels.objects import Objects
from darts_postprocessing.core.products.api import binarize
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


def test_label_image_is_uint16_while_the_labels_fit():
    """uint16 up to 65535 objects (half the memory of int32), int32 beyond."""
    binary = np.zeros((512, 512), bool)
    binary[::2, ::2] = True  # 65536 single-pixel objects
    objects = Objects(binary)
    image = objects.label_image()
    assert objects.count == 65536 and image.dtype == np.int32 and image.max() == 65536
    binary[-2, -2] = False
    image = Objects(binary).label_image()
    assert image.dtype == np.uint16 and image.max() == 65535
    np.testing.assert_array_equal(image, label_objects(binary)[0])


def test_label_image_refuses_a_dtype_that_cannot_hold_the_labels():
    binary = np.zeros((32, 32), bool)
    binary[::2, ::2] = True  # 256 objects
    with pytest.raises(ValueError, match="^256 objects do not fit into uint8 labels"):
        Objects(binary).label_image(np.uint8)
    binary[-2, -2] = False
    assert Objects(binary).label_image(np.uint8).max() == 255


def test_connectivity_4_splits_diagonal_contacts():
    binary = np.eye(4, dtype=bool)
    assert label_objects(binary)[1] == 1
    labels, count = label_objects(binary, connectivity=4)
    assert count == 4
    np.testing.assert_array_equal(np.diag(labels), [1, 2, 3, 4])


def test_pixel_counts_are_integers_and_row_weights_sum_per_object():
    binary = np.zeros((4, 6), bool)
    binary[0, 0:3] = binary[1, 1] = True  # object 1: 3 pixels in row 0, 1 in row 1
    binary[3, 4:6] = True  # object 2: 2 pixels in row 3
    objects = Objects(binary)
    assert objects.npixel().dtype == np.int64
    np.testing.assert_array_equal(objects.npixel(), [4, 2])
    np.testing.assert_array_equal(objects.rows_weighted(np.array([1.0, 10.0, 100.0, 1000.0])), [13.0, 2000.0])
    assert Objects(np.zeros((4, 6), bool)).rows_weighted(np.ones(4)).size == 0
    # components number the same objects as the labels (chunked_polygons relies on it)
    assert len(set(zip(objects.components, objects.run_labels))) == objects.count == 2


def test_objects_without_a_finite_value_get_nan_statistics_wherever_they_lie():
    binary = np.zeros((3, 7), bool)
    binary[1, 0] = binary[1, 2] = binary[1, 4] = binary[1, 6] = True  # objects 1..4
    values = np.full((3, 7), np.nan)
    values[1, 2], values[1, 4] = 0.25, 0.75  # objects 1 and 4 (first and last) have no finite value
    table = object_statistics(binary, values)
    for statistic in ("min", "max", "mean", "median"):
        np.testing.assert_array_equal(table[statistic], [np.nan, 0.25, 0.75, np.nan], err_msg=statistic)
    np.testing.assert_array_equal(table["std"], [np.nan, 0.0, 0.0, np.nan])
    values[1, 0] = values[1, 6] = 0.5
    values[1, 4] = np.nan  # now the middle objects 2 and 3 (one of them before the last) have none
    table = object_statistics(binary, values)
    np.testing.assert_array_equal(table["mean"], [0.5, 0.25, np.nan, 0.5])
    np.testing.assert_array_equal(table["std"], [0.0, 0.0, np.nan, 0.0])
    binary, values = np.zeros((1, 2000), bool), np.full((1, 2000), np.nan)
    binary[0, ::2], values[0, ::4] = True, 0.5  # 1000 objects, every second without a finite value
    table = object_statistics(binary, values)
    for statistic in ("min", "max", "mean", "median", "std"):
        assert np.isnan(table[statistic][1::2]).all() and not np.isnan(table[statistic][::2]).any(), statistic


@pytest.mark.parametrize("connectivity", [8, 4])
def test_dask_labels_and_statistics_equal_the_in_memory_ones(connectivity):
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    probs, _ = random_tile(5, shape=(30, 40))
    binary = np.nan_to_num(probs) > 0.4
    expected_labels, expected_count = label_objects(binary, connectivity)
    labels, count = label_objects(da.from_array(binary, chunks=(7, 9)), connectivity)
    with dask.config.set(scheduler="synchronous"):  # no threads: mutmut forks this process
        np.testing.assert_array_equal(labels.compute(), expected_labels)
        assert count.compute() == expected_count
        for values in (None, probs):
            lazy = object_statistics(da.from_array(binary, chunks=(7, 9)),
                                     None if values is None else da.from_array(values, chunks=(7, 9)))
            table, expected = lazy.compute(), object_statistics(binary, values)
            assert set(table) == set(expected)
            for name in expected:
                np.testing.assert_allclose(table[name], expected[name], err_msg=name)


def test_a_lazy_dataarray_gives_a_lazy_dataarray_of_labels():
    xr = pytest.importorskip("xarray")
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    binary = np.eye(5, dtype=bool)
    lazy = xr.DataArray(da.from_array(binary, chunks=2), dims=("y", "x"), attrs={"a": 1})
    labels, count = label_objects(lazy)
    assert isinstance(labels, xr.DataArray) and labels.dims == ("y", "x")
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_array_equal(labels.values, label_objects(binary)[0])


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
