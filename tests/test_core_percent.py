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
        for result in (one, several[threshold], {k: np.asarray(v) for k, v in lazy[threshold].items()}):
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


# -- DARTS' percent as stored (uint8, 255 = none), thresholded without decoding it to float ----------

def exhaustive_thresholds():
    """Every threshold of a fine grid over [0, 1], each k / 100 and the floats beside it."""
    grid = [i / 20000 for i in range(20001)]
    edges = [k / 100 for k in range(101)] + [0.29, 0.57, 0.505, 0.1 + 0.2]
    beside = [np.nextafter(t, side) for t in edges for side in (0.0, 1.0)]
    return sorted({float(t) for t in grid + edges + beside if 0.0 <= t <= 1.0})


def test_the_integer_rule_equals_the_float_rule_for_every_value_and_threshold():
    """stored_percent_above (uint8: v + 1 > ceil(100 t), 255 wrapping to 0) against
    above_threshold of the float32 that decode_probabilities gives each of the 256 values."""
    from darts_postprocessing.core.kernels.encodings import percent_lookup
    from darts_postprocessing.core.kernels.postprocess import above_threshold, stored_percent_above

    values = np.arange(256, dtype=np.uint8)
    # decode_probabilities refuses 101..254 (out of range); the values it accepts decode as the lookup says
    accepted = np.r_[np.arange(101), 255].astype(np.uint8)[None, :]
    np.testing.assert_array_equal(decoded(accepted)[0], percent_lookup("fraction")[accepted[0]])
    # all 256 values: 0..254 divided as decode_probabilities divides, 255 (nodata) NaN
    floats = np.divide(values, np.float32(100), dtype=np.float32)
    floats[255] = np.nan
    for threshold in exhaustive_thresholds():
        expected = above_threshold(floats, threshold, "percent")
        np.testing.assert_array_equal(stored_percent_above(values, threshold), expected, err_msg=str(threshold))
        assert not expected[255] and (expected[:255] == (np.arange(255) >= 100 * threshold)).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("order", ["C", "F"])
def test_prepare_export_of_stored_percent_equals_its_decoded_floats(seed, order):
    """The same extent, binarized rasters, counts and masked float32 probabilities (bit for bit)
    from the uint8 as from the floats it decodes to; several thresholds; unmasked: the uint8 kept."""
    import dask.array as da

    percent, quality = random_percent(seed)
    percent = np.asarray(percent, order=order)
    options = dict(mask_erosion_size=2, min_object_size=4, quality_level=1, probability_scale="percent")
    for boundary in ["remove", "clip"]:
        counts_floats = {}
        expected = prepare_export_thresholds({"probabilities": decoded(percent), "quality_data_mask": quality},
                                             THRESHOLDS, device="cpu", boundary=boundary, object_counts=counts_floats,
                                             **options)
        counts = {}
        got = prepare_export_thresholds({"probabilities": percent, "quality_data_mask": quality}, THRESHOLDS,
                                        device="cpu", boundary=boundary, object_counts=counts, **options)
        unmasked = prepare_export_thresholds({"probabilities": percent, "quality_data_mask": quality}, THRESHOLDS,
                                             device="cpu", boundary=boundary, masked_probabilities=False, **options)
        lazy = prepare_export_thresholds({"probabilities": da.from_array(percent, chunks=(37, 41)),
                                          "quality_data_mask": quality}, THRESHOLDS, boundary=boundary, **options)
        assert counts == counts_floats
        for threshold in THRESHOLDS:
            want = expected[threshold]
            for result in (got[threshold], unmasked[threshold], {k: np.asarray(v) for k, v in lazy[threshold].items()}):
                np.testing.assert_array_equal(result["binarized_segmentation"], want["binarized_segmentation"])
                np.testing.assert_array_equal(result["extent"], want["extent"])
            for result in (got[threshold], lazy[threshold]):
                masked = np.asarray(result["probabilities"])
                assert masked.dtype == np.float32
                np.testing.assert_array_equal(masked.view(np.uint32), want["probabilities"].view(np.uint32))
            assert unmasked[threshold]["probabilities"] is percent


def test_stored_percent_out_of_range_is_named():
    percent = np.full((4, 6), 50, np.uint8)
    percent[2, 3] = 180
    tile = {"probabilities": percent, "quality_data_mask": np.ones(percent.shape, np.uint8)}
    with pytest.raises(ValueError, match="probabilities.*percent"):
        prepare_export(tile, 0.5, 0, 1, device="cpu", probability_scale="percent")
    import dask.array as da

    lazy = prepare_export({name: da.from_array(array, chunks=(3, 4)) for name, array in tile.items()}, 0.5, 0, 1,
                          probability_scale="percent")  # thresholded as stored, block by block
    with pytest.raises(ValueError, match="probabilities.*percent"):
        lazy["binarized_segmentation"].compute()
    with pytest.raises(TypeError, match="probabilities"):
        prepare_export(tile, 0.5, 0, 1, device="cpu")  # read as fractions, uint8 is no float


@pytest.mark.parametrize("nodata", [None, 255.0, 0.0, 200.0, float("nan"), -1.0])
def test_stored_percent_is_what_decoding_gives(nodata):
    """stored_percent (no float) decodes, through the lookup, to decode_probabilities' floats bit
    for bit, for any nodata value; and it raises what decode_probabilities raises."""
    from darts_postprocessing.core.kernels.encodings import percent_lookup, stored_percent

    rng = np.random.default_rng(3)
    data = rng.integers(0, 101, (300, 5000), dtype=np.uint8)  # several strips
    if nodata is not None and 0 <= nodata <= 255:
        data[rng.random(data.shape) < 0.1] = int(nodata)
    elif nodata is None:
        data[rng.random(data.shape) < 0.1] = 255
    want = decode_probabilities(data, nodata, "probabilities", "percent")
    stored = stored_percent(data, nodata, "probabilities")
    assert stored is data or nodata not in (None, 255.0)
    np.testing.assert_array_equal(percent_lookup("fraction")[stored].view(np.uint32), want.view(np.uint32))
    bad = data.copy()
    bad[-1, -1] = 130 if nodata != 130 else 140
    with pytest.raises(ValueError) as raised:
        decode_probabilities(bad, nodata, "probabilities", "percent")
    with pytest.raises(ValueError, match=str(raised.value).replace("(", r"\(").replace(")", r"\)")):
        stored_percent(bad, nodata, "probabilities")
