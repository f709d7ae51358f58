"""Quality masks from Sentinel-2 SCL, Planet UDM2 and observation counts, class by class."""

import itertools

import numpy as np
import pytest
import reference
from darts_postprocessing.core import quality_from_observations, quality_from_scl, quality_from_udm2, quality_mask


def test_scl_every_class():
    scl = np.arange(12, dtype=np.uint8).reshape(3, 4)  # other values are refused: test_scl_outside_its_classes_is_an_error
    quality = quality_from_scl(scl)
    np.testing.assert_array_equal(quality, reference.quality_from_scl(scl))
    # The table of semantics.md, spelled out for the classes SCL defines.
    expected = {0: 0, 1: 0, 2: 2, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2, 8: 1, 9: 1, 10: 2, 11: 1}
    assert {c: int(quality.flat[c]) for c in expected} == expected
    assert quality.dtype == np.uint8


def test_udm2_every_combination():
    # Bands 1..8; band 1 (clear) and 7 (confidence) do not matter, band 8 is a bit field.
    rows = []
    for low_flags in itertools.product([0, 1], repeat=5):
        for unusable in (0, 1, 2, 64):
            for clear, confidence in ((0, 0), (1, 87)):
                rows.append((clear, *low_flags, confidence, unusable))
    udm2 = np.array(rows, dtype=np.uint8).T.reshape(8, 1, -1)
    quality = quality_from_udm2(udm2)[0]
    for column, (_clear, *low_flags, _confidence, unusable) in enumerate(rows):
        expected = 0 if unusable else 1 if any(low_flags) else 2
        assert quality[column] == expected, rows[column]


def test_udm2_needs_eight_bands():
    with pytest.raises(ValueError, match="8 bands"):
        quality_from_udm2(np.zeros((4, 3, 3), np.uint8))


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32])
def test_observation_counts(dtype):
    counts = np.array([[0, 1, 2, 3], [4, 5, 100, 0]], dtype=dtype)
    np.testing.assert_array_equal(quality_from_observations(counts), [[0, 1, 1, 1], [2, 2, 2, 0]])


def test_observation_counts_nan_is_invalid_and_negative_or_fractional_counts_are_refused():
    """Issue 20: one rule for counts, as strict as SCL/UDM2's: negative counts became 0 and 2.5
    became 'low quality' silently; now they are errors (NaN is still 'no value')."""
    np.testing.assert_array_equal(quality_from_observations(np.array([np.nan, 0, 3, 4], np.float32)), [0, 0, 1, 2])
    for counts in (np.array([np.nan, -1, 3], np.float32), np.array([-2, 1], np.int16), np.array([2.5], np.float64)):
        with pytest.raises(ValueError, match="observation counts are whole numbers of 0 or more"):
            quality_from_observations(counts)


def test_dispatch_and_bad_input():
    np.testing.assert_array_equal(quality_mask("scl", np.array([[4]], np.uint8)), [[2]])
    with pytest.raises(ValueError, match="source"):
        quality_mask("landsat", np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError, match="integers"):
        quality_from_scl(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="empty"):
        quality_from_scl(np.zeros((0, 2), np.uint8))


@pytest.mark.parametrize("source,data,expected", [
    ("scl", np.array([[0, 4, 8]], np.uint8), [[0, 2, 1]]),
    ("udm2", np.array([1, 0, 0, 0, 0, 1, 100, 0], np.uint8).reshape(8, 1, 1), [[1]]),  # cloud; confidence 100 %
    ("observations", np.array([[0, 2, 7]], np.uint16), [[0, 1, 2]]),
    ("observations", np.array([[np.nan, 2.0, 7.0]], np.float32), [[0, 1, 2]]),
])
def test_every_source_gives_a_uint8_darts_quality_mask(source, data, expected):
    """Each source by its name in QUALITY_SOURCES; the mask is uint8 like DARTS' quality_data_mask."""
    quality = quality_mask(source, data)
    np.testing.assert_array_equal(quality, expected)
    assert quality.dtype == np.uint8


def test_udm2_confidence_is_a_percentage_up_to_100():
    udm2 = np.zeros((8, 1, 2), np.uint8)
    udm2[6] = 100  # a full 100 % is valid UDM2
    np.testing.assert_array_equal(quality_from_udm2(udm2), [[2, 2]])
    udm2[6, 0, 1] = 101
    with pytest.raises(ValueError, match="percentage"):
        quality_from_udm2(udm2)


@pytest.mark.parametrize("source,data,error,message", [
    ("scl", np.zeros((2, 2), np.float32), TypeError, "scl must hold integers"),
    ("udm2", np.zeros((8, 2, 2), np.float32), TypeError, "udm2 must hold integers"),
    ("observations", np.array([["a"]]), TypeError, "count must hold integers"),
    ("scl", np.zeros((0, 2), np.uint8), ValueError, "scl is empty"),
    ("udm2", np.zeros((8, 0, 2), np.uint8), ValueError, "udm2 is empty"),
    ("observations", np.zeros((0, 2), np.int32), ValueError, "count is empty"),
])
def test_bad_input_names_the_input_in_one_line(source, data, error, message):
    with pytest.raises(error, match=f"^{message}"):
        quality_mask(source, data)


# -- 5. quality sources with impossible values ---------------------------------------------

@pytest.mark.parametrize("value,dtype", [(12, np.uint8), (255, np.uint8), (-1, np.int16)])
def test_scl_outside_its_classes_is_an_error(value, dtype):
    scl = np.arange(12, dtype=dtype).reshape(3, 4)
    scl[1, 1] = value
    with pytest.raises(ValueError, match=rf"SCL holds {value}, but .* 0\.\.11"):
        quality_from_scl(scl)


def udm2_of(**bands):
    """A valid 8-band UDM2 array (all clear, confidence 90) with the given bands replaced."""
    udm2 = np.zeros((8, 2, 3), np.uint8)
    udm2[0], udm2[6] = 1, 90
    for band, value in bands.items():
        udm2[int(band[1:]) - 1, 0, 0] = value
    return udm2


def test_udm2_flags_other_than_0_1_are_an_error():
    assert (quality_from_udm2(udm2_of(b3=1, b8=64)) == [[0, 2, 2], [2, 2, 2]]).all()
    for band in range(1, 7):
        with pytest.raises(ValueError, match=f"UDM2 band {band} holds 2, but bands 1-6 are flags of 0 or 1"):
            quality_from_udm2(udm2_of(**{f"b{band}": 2}))
    with pytest.raises(ValueError, match="confidence.*0..100"):
        quality_from_udm2(udm2_of(b7=101))


# -- 8. core checks ----------------------------------------------------------------------

def test_udm2_needs_exactly_eight_bands():
    with pytest.raises(ValueError, match="exactly 8 bands"):
        quality_from_udm2(np.concatenate([udm2_of(), np.zeros((1, 2, 3), np.uint8)]))
