"""Host passes split over threads (core/kernels/threads.py) give the same bytes as one thread,
and the same as the scikit-image reference, on tiles large enough to be split."""

import numpy as np
import pytest
import reference
from darts_postprocessing.core import prepare_export
from darts_postprocessing.core.kernels import postprocess, threads
from tiles import random_tile

# ~3.1 M px: split into row ranges (threads.MIN_RANGE_PIXELS), and ~5 x 10^4 invalid runs (painted
# in batches side by side: postprocess.MIN_RUNS_A_THREAD)
SHAPE = (1536, 2048)


@pytest.fixture
def one_thread_then_all():
    """Runs the test body's passes with 1 thread, then with every available core."""
    if threads.usable_cores() < 2:
        pytest.skip("one core: host passes cannot be split into threads here")
    yield
    threads.limit_host_threads(None)


def as_percent(probs):
    """DARTS' uint8 percent as stored (255: no prediction)."""
    return np.where(np.isnan(probs), 255, np.round(probs * 100)).astype(np.uint8)


def _prepare(tile, **options):
    return prepare_export(tile, 0.5, 10, 32, 1, [], "cpu", **options)


@pytest.mark.parametrize("seed", [0, 1, 2, 6])  # blobs, salt noise, blobs and noise (not sparse rectangles: none kept)
def test_threaded_passes_equal_one_thread_and_the_reference(seed, one_thread_then_all):
    probs, quality = random_tile(seed, SHAPE)
    rng = np.random.default_rng(seed)
    speckled = rng.random(SHAPE) < 0.05
    speckled[:, 700:] = False  # the west speckled: many invalid runs, the rest of the tile for objects
    quality[speckled] = 0
    invalid_runs = np.count_nonzero(np.diff((quality < 1).view(np.int8), axis=1) == 1)
    assert invalid_runs >= 2 * postprocess.MIN_RUNS_A_THREAD  # the erosion is painted in threads
    tiles = {"C-ordered": {"probabilities": probs, "quality_data_mask": quality},
             "Fortran-ordered": {"probabilities": np.asfortranarray(probs), "quality_data_mask": quality}}
    percent = as_percent(probs)
    results = {}
    for count in (1, None):
        threads.limit_host_threads(count)
        assert threads.host_threads() == (1 if count == 1 else min(threads.usable_cores(), 4))
        for name, tile in tiles.items():
            results[count, name] = _prepare(tile)
        results[count, "percent"] = _prepare({"probabilities": percent, "quality_data_mask": quality},
                                             probability_scale="percent")
        results[count, "clip"] = _prepare(tiles["C-ordered"], boundary="clip")
    extent, binarized, masked = reference.prepare_export(probs, quality, 0.5, 10, 32, 1)
    np.testing.assert_array_equal(results[1, "C-ordered"]["extent"], extent)
    np.testing.assert_array_equal(results[1, "C-ordered"]["binarized_segmentation"], binarized)
    np.testing.assert_array_equal(results[1, "C-ordered"]["probabilities"], masked)
    for key in ("C-ordered", "Fortran-ordered", "percent", "clip"):
        one, many = results[1, key], results[None, key]
        for layer in ("extent", "binarized_segmentation", "probabilities"):
            assert one[layer].dtype == many[layer].dtype
            np.testing.assert_array_equal(one[layer], many[layer], err_msg=f"{key} {layer}")
    assert binarized.any() and not extent.all()


def test_out_of_range_values_in_a_later_range_still_raise(one_thread_then_all):
    probs, quality = random_tile(1, SHAPE)
    probs[-1, -1] = 1.5  # in the last row range only
    with pytest.raises(ValueError, match="probabilities"):
        _prepare({"probabilities": probs, "quality_data_mask": quality})
    percent = as_percent(probs)
    percent[-1, -1] = 180
    with pytest.raises(ValueError, match="probabilities"):
        _prepare({"probabilities": percent, "quality_data_mask": quality}, probability_scale="percent")


def test_wide_tiles_in_any_layout():
    """Strips of a non-C-ordered layer are taller than a C-ordered one's when the tile is wider
    than 8192 px: each range's scratch fits them (a full tile is 10980 px wide)."""
    probs, quality = random_tile(2, (300, 9000))
    percent = as_percent(probs)
    expected = _prepare({"probabilities": probs, "quality_data_mask": quality})
    expected_percent = _prepare({"probabilities": percent, "quality_data_mask": quality}, probability_scale="percent")
    for layout in (np.asfortranarray, lambda array: array[::-1][::-1], lambda array: np.ascontiguousarray(array.T).T):
        got = _prepare({"probabilities": layout(probs), "quality_data_mask": quality})
        for layer in ("extent", "binarized_segmentation", "probabilities"):
            np.testing.assert_array_equal(got[layer], expected[layer])
        stored = _prepare({"probabilities": layout(percent), "quality_data_mask": quality}, probability_scale="percent")
        for layer in ("extent", "binarized_segmentation", "probabilities"):
            np.testing.assert_array_equal(stored[layer], expected_percent[layer])


def test_passes_side_by_side_share_the_cores():
    with threads.host_pass() as first:
        with threads.host_pass() as second:
            assert (first, second) == (threads.host_threads(), 1)
            assert len(threads.over_row_ranges(4000, 4000, lambda rows: rows)) == 1
    with threads.host_pass() as again:
        assert again == threads.host_threads()
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, initializer=threads.passes_alone) as pool:  # as dask's blocks run
        assert pool.submit(lambda: threads.over_row_ranges(4000, 4000, lambda rows: rows)).result() == [slice(0, 4000)]
    assert len(threads.over_row_ranges(4000, 4000, lambda rows: rows)) == min(threads.host_threads(), 15)


def test_row_ranges_cover_every_row_once():
    seen = threads.over_row_ranges(3000, 2000, lambda rows: list(range(rows.start, rows.stop)))
    assert [row for part in seen for row in part] == list(range(3000))
    assert len(seen) == min(threads.host_threads(), 3000 * 2000 // threads.MIN_RANGE_PIXELS)
    assert threads.over_row_ranges(1, 10, lambda rows: (rows.start, rows.stop)) == [(0, 1)]


def test_the_environment_and_worker_processes_limit_the_threads(monkeypatch):
    monkeypatch.delenv(threads.HOST_THREADS_VARIABLE, raising=False)
    cores = min(threads.usable_cores(), threads.MAX_HOST_THREADS)
    assert threads.host_threads() == cores
    monkeypatch.setenv(threads.HOST_THREADS_VARIABLE, "1")
    assert threads.host_threads() == 1
    assert len(threads.over_row_ranges(4000, 4000, lambda rows: rows)) == 1
    for ignored in ("not a number", "0", "-2", "\u00b2"):
        monkeypatch.setenv(threads.HOST_THREADS_VARIABLE, ignored)
        assert threads.host_threads() == cores
    monkeypatch.delenv(threads.HOST_THREADS_VARIABLE)
    try:
        threads.limit_host_threads(1)
        assert threads.host_threads() == 1
    finally:
        threads.limit_host_threads(None)
    assert threads.host_threads() == cores
