"""The core's public API: containers, input safety, devices, errors, import hygiene."""

import logging
import re
import subprocess
import sys

import numpy as np
import pytest
import reference
import xarray as xr
from darts_postprocessing.core import binarize, erode_mask, prepare_export
from tiles import random_tile


def make_dataset(seed=5, subsets=()):
    probs, quality = random_tile(seed, shape=(60, 50))
    coords = {"y": np.arange(60) * -10.0 + 7e6, "x": np.arange(50) * 10.0 + 4e5}
    data = {"probabilities": (("y", "x"), probs, {"units": "1"}), "quality_data_mask": (("y", "x"), quality)}
    for i, name in enumerate(subsets):
        data[f"probabilities-{name}"] = (("y", "x"), random_tile(seed + 1 + i, shape=(60, 50))[0])
    return xr.Dataset(data, coords=coords, attrs={"tile_id": "T33XWJ"})


def test_dataset_in_dataset_out_and_input_untouched():
    tile = make_dataset(subsets=["with_tcvis", "without_tcvis"])
    before = tile.copy(deep=True)
    out = prepare_export(tile, 0.5, 3, 8, "low_quality", ["with_tcvis", "without_tcvis"], "cpu")
    xr.testing.assert_identical(tile, before)
    assert out is not tile
    assert out.attrs == tile.attrs and list(out["extent"].dims) == ["y", "x"]
    np.testing.assert_array_equal(out["x"], tile["x"])
    assert out["extent"].dtype == np.uint8 and out["extent"].attrs["long_name"] == "Extent of the segmentation"
    for suffix in ["", "-with_tcvis", "-without_tcvis"]:
        binarized = out[f"binarized_segmentation{suffix}"]
        assert binarized.dtype == bool and binarized.attrs["long_name"] == "Binarized Segmentation"
        extent, expected, masked = reference.prepare_export(
            tile[f"probabilities{suffix}"].values, tile["quality_data_mask"].values, 0.5, 3, 8, 1)
        np.testing.assert_array_equal(binarized.values, expected)
        np.testing.assert_array_equal(out[f"probabilities{suffix}"].values, masked)
    assert out["probabilities"].attrs == {"units": "1"}


def test_dataarrays_keep_coords_and_numpy_stays_numpy():
    tile = make_dataset()
    eroded = erode_mask(tile["quality_data_mask"] >= 1, 2, "cpu")
    assert isinstance(eroded, xr.DataArray) and eroded.dims == ("y", "x")
    np.testing.assert_array_equal(eroded["y"], tile["y"])
    plain = erode_mask((tile["quality_data_mask"] >= 1).values, 2, "cpu")
    assert type(plain) is np.ndarray
    np.testing.assert_array_equal(plain, eroded.values)
    result = binarize(tile["probabilities"], 0.5, 4, eroded, "cpu")
    assert isinstance(result, xr.DataArray) and result.dtype == bool


def test_uint8_and_bool_masks_give_the_same_result():
    probs, quality = random_tile(2)
    mask = reference.erode_mask(quality >= 1, 1)
    np.testing.assert_array_equal(binarize(probs, 0.5, 3, mask, "cpu"), binarize(probs, 0.5, 3, mask.astype(bool), "cpu"))
    assert binarize(probs, 0.5, 3, mask, "cpu").any()


def test_dask_backed_inputs_give_the_same_result():
    pytest.importorskip("dask")
    tile = make_dataset(seed=7)
    lazy = tile.chunk({"y": 16, "x": 16})
    eager = prepare_export(tile, 0.4, 2, 4, 1, device="cpu")
    computed = prepare_export(lazy, 0.4, 2, 4, 1, device="cpu")
    for name in ["extent", "binarized_segmentation", "probabilities"]:
        np.testing.assert_array_equal(computed[name].values, eager[name].values)


def test_mapping_of_arrays():
    probs, quality = random_tile(4)
    out = prepare_export({"probabilities": probs, "quality_data_mask": quality}, device="cpu", quality_level=2)
    assert isinstance(out, dict) and set(out) >= {"extent", "binarized_segmentation", "probabilities"}
    assert np.isnan(out["probabilities"][out["extent"] == 0]).all()


def test_progress_is_reported_and_can_cancel():
    probs, quality = random_tile(4)
    seen = []
    prepare_export({"probabilities": probs, "quality_data_mask": quality}, quality_level=1, device="cpu",
                   progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1 and len(seen) >= 4

    class Stop(Exception):
        pass

    def cancel(fraction, message):
        if fraction > 0.1:
            raise Stop

    with pytest.raises(Stop):
        prepare_export({"probabilities": probs, "quality_data_mask": quality}, quality_level=1, device="cpu",
                       progress=cancel)


GOOD = dict(probs=np.full((4, 4), 0.7, np.float32), mask=np.ones((4, 4), np.uint8))


@pytest.mark.parametrize("call,error,words", [
    (lambda: binarize(GOOD["probs"], 1.5, 1, GOOD["mask"]), ValueError, "threshold"),
    (lambda: binarize(GOOD["probs"], float("nan"), 1, GOOD["mask"]), ValueError, "threshold"),
    (lambda: binarize(GOOD["probs"], 0.5, -1, GOOD["mask"]), ValueError, "min_object_size"),
    (lambda: binarize(GOOD["probs"], 0.5, 2.5, GOOD["mask"]), TypeError, "min_object_size"),
    (lambda: binarize(GOOD["probs"], 0.5, 1, np.ones((4, 5), np.uint8)), ValueError, "same shape"),
    (lambda: binarize(GOOD["probs"][None], 0.5, 1, GOOD["mask"][None]), ValueError, "2-D"),
    (lambda: binarize(np.full((4, 4), 70, np.uint8), 0.5, 1, GOOD["mask"]), TypeError, "probs"),
    (lambda: binarize(GOOD["probs"] * 2, 0.5, 1, GOOD["mask"]), ValueError, "[0, 1]"),
    (lambda: binarize(np.zeros((0, 4), np.float32), 0.5, 1, np.zeros((0, 4), bool)), ValueError, "empty"),
    (lambda: binarize(GOOD["probs"], 0.5, 1, GOOD["mask"], size_connectivity=6), ValueError, "size_connectivity"),
    (lambda: erode_mask(GOOD["mask"], -2), ValueError, "size"),
    (lambda: erode_mask(GOOD["mask"], 2, edge_size=-1), ValueError, "edge_size"),
    (lambda: erode_mask(GOOD["mask"], 2, device="tpu"), ValueError, "device"),
    (lambda: erode_mask(GOOD["mask"], 2, device=-1), ValueError, "device"),
    (lambda: erode_mask(GOOD["mask"].astype(np.float32), 2), TypeError, "mask"),
    (lambda: prepare_export({"probabilities": GOOD["probs"], "quality_data_mask": GOOD["mask"]}, quality_level="best"),
     ValueError, "quality_level"),
    (lambda: prepare_export({"probabilities": GOOD["probs"], "quality_data_mask": GOOD["mask"]}, boundary="keep"),
     ValueError, "boundary"),
    (lambda: prepare_export({"probabilities": GOOD["probs"]}), KeyError, "quality_data_mask"),
    (lambda: prepare_export({"probabilities": GOOD["probs"], "quality_data_mask": GOOD["mask"]}, ensemble_subsets=["a"]),
     KeyError, "probabilities-a"),
    (lambda: prepare_export({"probabilities": GOOD["probs"], "quality_data_mask": GOOD["mask"] * 7}),
     ValueError, "quality_data_mask"),
    (lambda: prepare_export({"probabilities": GOOD["probs"], "quality_data_mask": np.ones((3, 3), np.uint8)}),
     ValueError, "same shape"),
])
def test_bad_input_is_named(call, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        call()


def test_cuda_without_gpu_warns_and_computes_on_cpu(caplog):
    from darts_postprocessing.core import gpu_available
    if gpu_available():
        pytest.skip("a GPU is present: the fallback cannot be observed")
    probs, quality = random_tile(9)
    with caplog.at_level(logging.WARNING):
        result = binarize(probs, 0.5, 4, quality >= 1, "cuda")
    assert "CPU" in caplog.text
    np.testing.assert_array_equal(result, binarize(probs, 0.5, 4, quality >= 1, "cpu"))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        erode_mask(quality, 1, device=3)
    assert "CPU" in caplog.text


def test_core_imports_without_qgis(package_parent):
    code = ("import sys; import darts_postprocessing, darts_postprocessing.core as c; "
            "assert not any(m.split('.')[0] == 'qgis' for m in sys.modules), 'qgis imported'; print(c.prepare_export)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=package_parent)


def test_no_qgis_in_core_sources():
    from pathlib import Path
    core = Path(__file__).resolve().parent.parent / "core"
    for path in core.rglob("*.py"):
        imports = re.findall(r"^\s*(?:import|from)\s+(\S+)", path.read_text(), flags=re.MULTILINE)
        assert not [name for name in imports if name.split(".")[0] == "qgis"], path


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


@pytest.mark.parametrize("level", [2, "high_quality"])
def test_bool_quality_mask_cannot_ask_for_high_quality(level):
    tile = {"probabilities": np.full((8, 8), 0.9, np.float32), "quality_data_mask": np.ones((8, 8), bool)}
    with pytest.raises(ValueError, match="quality_data_mask is bool"):
        prepare_export(tile, quality_level=level, mask_erosion_size=0, min_object_size=1, device="cpu")
    kept = prepare_export(tile, quality_level=1, mask_erosion_size=0, min_object_size=1, device="cpu")
    assert kept["extent"].all() and kept["binarized_segmentation"].all()
