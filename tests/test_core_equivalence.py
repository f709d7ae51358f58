"""The core against the scikit-image reference of semantics.md, pixel for pixel."""

import itertools

import numpy as np
import pytest

import reference
from cases import ALL as CASES
from darts_postprocessing.core import binarize, erode_mask, prepare_export
from tiles import random_tile

SEEDS = range(24)
DEVICE = "cpu"  # test_gpu.py runs this module's checks with device="cuda"


def run_case(probs, quality, device=DEVICE, **options):
    """Core and reference results for one layer, as (core, reference) pairs."""
    tile = {"probabilities": probs, "quality_data_mask": quality}
    out = prepare_export(
        tile, options.get("threshold", 0.5), options.get("erosion", 10), options.get("min_size", 32),
        options.get("level", 0), [], device, options.get("edge"),
        boundary=options.get("boundary", "remove"), size_connectivity=options.get("size_connectivity", 8),
    )
    extent, binarized, masked = reference.prepare_export(probs, quality, **options)
    return out, (extent, binarized, masked)


def assert_same(out, expected):
    extent, binarized, masked = expected
    assert out["extent"].dtype == np.uint8 and out["binarized_segmentation"].dtype == bool
    np.testing.assert_array_equal(out["extent"], extent)
    np.testing.assert_array_equal(out["binarized_segmentation"], binarized)
    np.testing.assert_array_equal(out["probabilities"], masked)  # NaN == NaN here
    assert out["probabilities"].dtype == masked.dtype


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", [0, 1, 3, 10])
def test_erode_mask_random(seed, size):
    _, quality = random_tile(seed)
    for edge in (None, 0, 2):
        got = erode_mask(quality >= 1, size, DEVICE, edge_size=edge)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, reference.erode_mask(quality >= 1, size, edge))


@pytest.mark.parametrize("seed", SEEDS)
def test_binarize_random(seed):
    probs, quality = random_tile(seed)
    mask = reference.erode_mask(quality >= 1, 2)
    for threshold, min_size, conn in [(0.5, 32, 8), (0.3, 5, 4), (0.7, 1, 8), (0.5, 0, 4), (0.2, 100, 8)]:
        got = binarize(probs, threshold, min_size, mask, DEVICE, size_connectivity=conn)
        assert got.dtype == bool
        np.testing.assert_array_equal(got, reference.binarize(probs, threshold, min_size, mask, conn))


@pytest.mark.parametrize("threshold", [0.3, 0.7, 0.1])
def test_pixels_equal_to_the_float32_threshold_are_not_objects(threshold):
    """float32(threshold) is not above the threshold in float32, as upstream compares (its
    xarray comparison keeps the array's float32): the core and the reference agree, though a
    float64 comparison would call these pixels objects for 0.3 and 0.1 (float32 rounds up)."""
    probs = np.zeros((12, 12), np.float32)
    probs[2:8, 2:8] = np.float32(threshold)
    probs[9:11, 9:11] = np.nextafter(np.float32(threshold), np.float32(1))
    valid = np.ones(probs.shape, np.uint8)
    expected = np.zeros(probs.shape, bool)
    expected[9:11, 9:11] = True
    np.testing.assert_array_equal(binarize(probs, threshold, 1, valid, DEVICE), expected)
    np.testing.assert_array_equal(reference.binarize(probs, threshold, 1, valid), expected)
    assert (np.float64(np.float32(threshold)) > threshold) == (threshold != 0.7)  # where float64 would differ


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("boundary,size_connectivity", list(itertools.product(["remove", "clip"], [8, 4])))
def test_prepare_export_random(seed, boundary, size_connectivity):
    probs, quality = random_tile(seed, shape=(80 + seed, 70 + 2 * seed))
    level = ["none", "low_quality", "high_quality", 1][seed % 4]
    options = dict(threshold=[0.5, 0.3, 0.6][seed % 3], erosion=seed % 7, min_size=[32, 4, 1, 10][seed % 4],
                   level=level, edge=[None, 0, 3][seed % 3], boundary=boundary, size_connectivity=size_connectivity)
    assert_same(*run_case(probs, quality, **options))


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("boundary,size_connectivity", list(itertools.product(["remove", "clip"], [8, 4])))
@pytest.mark.parametrize("level,erosion,edge", [(0, 10, None), (1, 0, 0), (1, 2, None), (2, 1, 0), (2, 3, 5)])
def test_hand_made_cases(name, boundary, size_connectivity, level, erosion, edge):
    probs, quality = CASES[name]()
    for min_size in (0, 16, 31, 32, 33):
        options = dict(threshold=0.5, erosion=erosion, min_size=min_size, level=level, edge=edge,
                       boundary=boundary, size_connectivity=size_connectivity)
        assert_same(*run_case(probs, quality, **options))


@pytest.mark.parametrize("layout", ["fortran", "strided", "transposed"])
def test_any_memory_layout(layout):
    probs, quality = random_tile(6, shape=(90, 120))
    change = {"fortran": np.asfortranarray, "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
              "transposed": lambda a: np.ascontiguousarray(a.T).T}[layout]
    options = dict(threshold=0.4, erosion=3, min_size=6, level=1, edge=None)
    expected = reference.prepare_export(probs, quality, **options)
    out, _ = run_case(change(probs), change(quality), **options)
    assert_same(out, expected)
