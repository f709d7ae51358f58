"""The equivalence checks again with device="cuda"; skipped cleanly without a CUDA GPU."""

import numpy as np
import pytest
from darts_postprocessing.core import binarize, erode_mask, gpu_available

pytestmark = pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU visible to cupy")

import test_core_equivalence as cpu_tests  # noqa: E402


@pytest.fixture(autouse=True)
def on_gpu(monkeypatch):
    monkeypatch.setattr(cpu_tests, "DEVICE", "cuda")


test_erode_mask_random = cpu_tests.test_erode_mask_random
test_binarize_random = cpu_tests.test_binarize_random
test_prepare_export_random = cpu_tests.test_prepare_export_random
test_hand_made_cases = cpu_tests.test_hand_made_cases


def test_cupy_arrays_stay_on_the_gpu():
    import cupy
    from tiles import random_tile
    probs, quality = random_tile(3)
    mask = erode_mask(cupy.asarray(quality), 2, "cuda")
    assert isinstance(mask, cupy.ndarray)
    result = binarize(cupy.asarray(probs), 0.5, 4, mask, "cuda")
    assert isinstance(result, cupy.ndarray)
    np.testing.assert_array_equal(result.get(), binarize(probs, 0.5, 4, mask.get(), "cpu"))
