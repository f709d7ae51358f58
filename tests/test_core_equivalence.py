"""The core against the scikit-image reference of semantics.md, pixel for pixel."""

import itertools
import sys

import numpy as np
import pytest
import reference
from cases import ALL as CASES
from darts_postprocessing.core import binarize, erode_mask, prepare_export, prepare_export_thresholds
from tiles import random_exclusion, random_tile
import os
import subprocess

SEEDS = range(24)
DEVICE = "cpu"  # test_gpu.py runs this module's checks with device="cuda"


def run_case(probs, quality, device=None, **options):
    """Core and reference results for one layer, as (core, reference) pairs; `device` defaults
    to this module's DEVICE as it is when called (test_gpu.py sets it to "cuda")."""
    device = DEVICE if device is None else device
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


# -- exclusion masks ------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("boundary,size_connectivity", list(itertools.product(["remove", "clip"], [8, 4])))
def test_exclusion_random(seed, boundary, size_connectivity):
    """Objects meeting the exclusion: removed whole, or cut and then size-filtered (clip); the
    counts, with removed_excluded as a reason of its own, as the reference counts them."""
    shape = (80 + seed, 70 + 2 * seed)
    probs, quality = random_tile(seed, shape=shape)
    exclude = random_exclusion(seed, shape)
    options = dict(threshold=[0.5, 0.3, 0.6][seed % 3], erosion=seed % 5, min_size=[32, 4, 1, 10][seed % 4],
                   level=["none", "low_quality", "high_quality", 1][seed % 4], edge=[None, 0, 3][seed % 3],
                   boundary=boundary, size_connectivity=size_connectivity)
    counts = {}
    out = prepare_export({"probabilities": probs, "quality_data_mask": quality}, options["threshold"],
                         options["erosion"], options["min_size"], options["level"], [], DEVICE, options["edge"],
                         boundary=boundary, size_connectivity=size_connectivity, exclude=exclude, object_counts=counts)
    expected = reference.prepare_export(probs, quality, exclude=exclude, **options)
    assert_same(out, expected)
    source = probs if boundary == "remove" else expected[2]
    assert counts["binarized_segmentation"] == reference.object_counts(
        source, options["threshold"], options["min_size"], expected[0], size_connectivity, exclude, boundary)
    got = binarize(probs, options["threshold"], options["min_size"], expected[0], DEVICE,
                   size_connectivity=size_connectivity, exclude=exclude.astype(bool), boundary=boundary)
    np.testing.assert_array_equal(got, expected[1])


def test_exclusion_hand_made():
    """Remove: any excluded pixel drops the object; clip: excluded pixels go, the rest is then
    size-filtered; an object wholly excluded is counted as excluded, one also touching the
    boundary as removed at the boundary."""
    probs = np.zeros((20, 30), np.float32)
    quality = np.full(probs.shape, 2, np.uint8)
    exclude = np.zeros(probs.shape, np.uint8)
    probs[2:6, 2:12] = 0.9  # 40 px, 4 of them excluded: remove drops it, clip keeps 36 px
    exclude[2:6, 11] = 1
    probs[10:13, 2:5] = 0.9  # 9 px wholly excluded
    exclude[9:14, 1:6] = 1
    probs[10:16, 10:16] = 0.9  # 36 px, 30 excluded: clip leaves 6 px, too small
    exclude[10:15, 10:16] = 1
    probs[0:4, 20:30] = 0.9  # touches the edge band and the exclusion
    exclude[3, 25] = 1
    probs[12:17, 22:28] = 0.9  # 30 px, untouched
    tile = {"probabilities": probs, "quality_data_mask": quality}
    for boundary, kept_pixels, excluded in (("remove", 30, 3), ("clip", 36 + 26 + 30, 1)):
        counts = {}
        out = prepare_export(tile, 0.5, 0, 20, 1, device=DEVICE, edge_erosion_size=1, boundary=boundary,
                             exclude=exclude, object_counts=counts)
        assert out["binarized_segmentation"].sum() == kept_pixels, boundary
        assert counts["binarized_segmentation"]["removed_excluded"] == excluded, boundary
        assert counts["binarized_segmentation"]["removed_at_boundary"] == (1 if boundary == "remove" else 0)
        assert not (out["binarized_segmentation"] & (exclude != 0)).any()
    no_exclusion = {}
    prepare_export(tile, 0.5, 0, 20, 1, device=DEVICE, object_counts=no_exclusion)
    assert "removed_excluded" not in no_exclusion["binarized_segmentation"]


def test_exclusion_must_be_a_mask_on_the_grid():
    probs, quality = random_tile(1, shape=(30, 40))
    tile = {"probabilities": probs, "quality_data_mask": quality}
    with pytest.raises(ValueError, match="same shape"):
        prepare_export(tile, device=DEVICE, exclude=np.zeros((40, 30), np.uint8))
    with pytest.raises(TypeError, match="non-zero = excluded"):
        prepare_export(tile, device=DEVICE, exclude=np.zeros((30, 40), np.float32))


# -- several thresholds ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_thresholds_give_what_one_run_per_threshold_gives(seed):
    probs, quality = random_tile(seed, shape=(70, 90))
    member, _ = random_tile(seed + 1, shape=(70, 90))
    tile = {"probabilities": probs, "quality_data_mask": quality, "probabilities-m": member}
    options = dict(mask_erosion_size=3, min_object_size=5, quality_level=1, ensemble_subsets=["m"], device=DEVICE,
                   boundary=["remove", "clip"][seed % 2], exclude=random_exclusion(seed, (70, 90)) if seed % 3 else None)
    counts = {}
    results = prepare_export_thresholds(tile, [0.6, 0.3, 0.45], object_counts=counts, **options)
    assert list(results) == [0.6, 0.3, 0.45] and list(counts) == [0.6, 0.3, 0.45]
    for threshold, result in results.items():
        single_counts = {}
        single = prepare_export(tile, threshold, object_counts=single_counts, **options)
        assert sorted(result) == sorted(single)
        for name in single:
            np.testing.assert_array_equal(result[name], single[name], err_msg=f"{name} at {threshold}")
        assert counts[threshold] == single_counts
    above = [(probs > t).sum() for t in (0.3, 0.6)]
    assert above[0] > above[1]  # the thresholds really differ on this tile


def test_thresholds_are_checked():
    probs, quality = random_tile(1, shape=(20, 20))
    tile = {"probabilities": probs, "quality_data_mask": quality}
    for bad, error in (([], ValueError), (0.5, ValueError), ([0.5, 0.5], ValueError), ([0.5, 1.5], ValueError),
                       ([0.2, "x"], TypeError)):
        with pytest.raises(error):
            prepare_export_thresholds(tile, bad, device=DEVICE)


def test_the_module_device_reaches_prepare_export(monkeypatch):
    """test_gpu.py reruns these checks by setting DEVICE: run_case must read it when called (a
    default bound at import kept them on the CPU). An unknown device proves it arrives."""
    probs, quality = random_tile(0)
    monkeypatch.setattr(sys.modules[__name__], "DEVICE", "no-such-device")
    with pytest.raises(ValueError, match="no-such-device"):
        run_case(probs, quality)


# -- 15. mask erosion memory does not grow with the radius ---------------------------------

ERODE_LARGE_RADIUS = """
import sys
import numpy as np
from darts_postprocessing.core.kernels.postprocess import erode_valid

def peak_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024

rng = np.random.default_rng(15)
valid = np.ones((8000, 8000), bool)
for row, column, length in rng.integers(0, (8000, 7950, 50), (8000, 3)) + (0, 0, 1):
    valid[row, column:column + length] = False  # 8000 scattered invalid stretches
before = peak_mb()
eroded = erode_valid(valid, int(sys.argv[1]), 0)
print(peak_mb() - before, int(eroded.sum()))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from /proc (Linux)")
def test_erosion_by_a_large_radius_keeps_memory_bounded(package_parent):
    """Radius 500 on an 8000 x 8000 high-quality mask with scattered invalid stretches needed
    4.3 GB (one interval per invalid run and disk row); batches keep it a few hundred MB."""
    result = subprocess.run([sys.executable, "-c", ERODE_LARGE_RADIUS, "500"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(package_parent)), timeout=120)
    assert result.returncode == 0, result.stderr
    growth, left = result.stdout.split()
    assert float(growth) < 1000, f"erosion by radius 500 grew the peak memory by {float(growth):.0f} MB"
    assert int(left) == 0  # radius 500 around 8000 stretches leaves nothing valid


@pytest.mark.parametrize("intervals,pixels", [(1, 1), (7, 5), (50, 64)])
def test_erosion_in_small_batches_equals_the_reference(monkeypatch, intervals, pixels):
    """The batches (of runs, and of pixels to paint) change nothing: tiny budgets, many batches."""
    import reference
    from darts_postprocessing.core.kernels import postprocess

    monkeypatch.setattr(postprocess, "INTERVAL_BUDGET", intervals)
    monkeypatch.setattr(postprocess, "PIXEL_BUDGET", pixels)
    rng = np.random.default_rng(intervals)
    for size in (1, 3, 8):
        valid = rng.random((37, 45)) > 0.08
        valid[5:9, 10:30] = False  # a wide invalid stretch next to scattered pixels
        got = postprocess.erode_valid(valid, size, 0)
        np.testing.assert_array_equal(got, reference.erode_mask(valid, size, 0) != 0)
