"""Chunked (Dask) postprocessing against the in-memory core: the same bytes for every chunking.

Lazy results (nothing computed inside the API), exact for chunks smaller than the erosion
disk, 1-pixel-wide and irregular chunks, objects crossing many chunks, both boundary modes and
size connectivities, ensemble subsets, NaN; on dask's local scheduler and on a real
dask.distributed LocalCluster of worker processes.
"""

import numpy as np
import pytest
from darts_postprocessing.core import binarize, erode_mask, label_objects, prepare_export, prepare_export_thresholds
from vectors import polygons_by_id
from tiles import random_exclusion, random_tile

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def random_chunks(rng, length):
    """Irregular chunk sizes along one axis, from 1 pixel up."""
    sizes = []
    while sum(sizes) < length:
        sizes.append(int(rng.choice([1, 2, 3, rng.integers(1, 12), rng.integers(8, 60)])))
    sizes[-1] -= sum(sizes) - length
    return tuple(s for s in sizes if s > 0)


def lazy_tile(probs, quality, chunks, **subsets):
    tile = {"probabilities": da.from_array(probs, chunks=chunks), "quality_data_mask": da.from_array(quality, chunks=chunks)}
    tile.update({f"probabilities-{name}": da.from_array(p, chunks=chunks) for name, p in subsets.items()})
    return tile


def assert_same_as_in_memory(probs, quality, chunks, scheduler="sync", subsets=None, exclude=None, **options):
    subsets = subsets or {}
    if exclude is not None:  # in memory as numpy, chunked as dask
        options = dict(options, exclude=exclude)
    eager_tile = {"probabilities": probs, "quality_data_mask": quality,
                  **{f"probabilities-{n}": p for n, p in subsets.items()}}
    eager_counts, lazy_counts = {}, {}
    expected = prepare_export(eager_tile, device="cpu", ensemble_subsets=list(subsets), object_counts=eager_counts,
                              **options)
    if exclude is not None:
        options["exclude"] = da.from_array(exclude, chunks=chunks)
    lazy = prepare_export(lazy_tile(probs, quality, chunks, **subsets), ensemble_subsets=list(subsets),
                          object_counts=lazy_counts, **options)
    names = sorted(expected)
    assert sorted(lazy) == names
    for name in names:
        if name == "quality_data_mask":
            continue
        assert isinstance(lazy[name], da.Array), name
    computed, counts = dask.compute({n: lazy[n] for n in names}, lazy_counts, scheduler=scheduler)
    for name in names:
        assert computed[name].dtype == np.asarray(expected[name]).dtype, name
        np.testing.assert_array_equal(computed[name], expected[name], err_msg=f"{name} with chunks {chunks}")
    assert counts == eager_counts
    return expected


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_chunkings_of_random_tiles(seed):
    rng = np.random.default_rng(1000 + seed)
    probs, quality = random_tile(seed, shape=(int(rng.integers(30, 90)), int(rng.integers(30, 90))))
    chunks = (random_chunks(rng, probs.shape[0]), random_chunks(rng, probs.shape[1]))
    assert_same_as_in_memory(
        probs, quality, chunks,
        bin_threshold=float(rng.choice([0.3, 0.5, 0.7])), mask_erosion_size=int(rng.choice([0, 1, 3, 7, 15])),
        edge_erosion_size=rng.choice([None, 0, 2, 9]), min_object_size=int(rng.choice([0, 1, 2, 5, 32])),
        quality_level=int(rng.integers(0, 3)), boundary=str(rng.choice(["remove", "clip"])),
        size_connectivity=int(rng.choice([4, 8])))


@pytest.mark.parametrize("boundary", ["remove", "clip"])
@pytest.mark.parametrize("size_connectivity", [4, 8])
@pytest.mark.parametrize("chunks", [(1, 70), (60, 1), (5, 4), ((3, 1, 20, 2, 34), (1, 1, 8, 33, 27))])
def test_one_pixel_and_irregular_chunks(boundary, size_connectivity, chunks):
    probs, quality = random_tile(2, shape=(60, 70))
    assert_same_as_in_memory(probs, quality, chunks, mask_erosion_size=4, min_object_size=6, quality_level=1,
                             boundary=boundary, size_connectivity=size_connectivity)


def blank(shape=(40, 40)):
    return np.zeros(shape, np.float32), np.full(shape, 2, np.uint8)


def test_an_object_snaking_across_many_chunks_with_diagonal_steps_at_chunk_corners():
    probs, quality = blank((48, 48))
    # A diagonal staircase through the corners of 4x4 chunks, then a long horizontal tail.
    for i in range(40):
        probs[i, i] = 0.9
    probs[40, 39:47] = 0.9
    expected = assert_same_as_in_memory(probs, quality, (4, 4), mask_erosion_size=0, min_object_size=48,
                                        quality_level=0)
    assert expected["binarized_segmentation"].sum() == 48  # one 8-connected object of exactly 48 pixels
    # 4-connected, the staircase falls apart into single pixels, too small; the tail and the
    # step above its first pixel stay (9 pixels).
    small = assert_same_as_in_memory(probs, quality, (4, 4), mask_erosion_size=0, min_object_size=8,
                                     quality_level=0, size_connectivity=4)
    assert small["binarized_segmentation"].sum() == 9


def test_an_object_whose_only_invalid_pixel_lies_in_another_chunk():
    probs, quality = blank()
    probs[5:25, 5:8] = 0.9  # spans chunks (10 px) vertically
    quality[24, 6] = 0  # its one invalid pixel, two chunks below its first pixel
    probs[5:25, 20:23] = 0.9  # the same object elsewhere, all valid
    expected = assert_same_as_in_memory(probs, quality, (10, 10), mask_erosion_size=0, min_object_size=0,
                                        quality_level=1)
    assert not expected["binarized_segmentation"][:, :10].any() and expected["binarized_segmentation"][:, 20:].any()


@pytest.mark.parametrize("size_connectivity", [4, 8])
def test_an_object_of_exactly_the_minimum_size_split_over_four_chunks(size_connectivity):
    probs, quality = blank()
    probs[17:23, 17:23] = 0.9  # 6 x 6 around the corner (20, 20) of four 20 x 20 chunks
    probs[17, 17] = probs[17, 22] = probs[22, 17] = probs[22, 22] = 0  # minus its corners: 32 pixels, 8 a chunk
    expected = assert_same_as_in_memory(probs, quality, (20, 20), mask_erosion_size=0, min_object_size=32,
                                        quality_level=0, size_connectivity=size_connectivity)
    assert expected["binarized_segmentation"].sum() == 32
    probs[18, 18] = 0  # 31 pixels: dropped
    dropped = assert_same_as_in_memory(probs, quality, (20, 20), mask_erosion_size=0, min_object_size=32,
                                       quality_level=0, size_connectivity=size_connectivity)
    assert not dropped["binarized_segmentation"].any()


def test_the_edge_band_lies_at_the_raster_edges_only():
    probs, quality = blank((30, 37))
    probs[:] = 0.9  # one object covering everything
    expected = assert_same_as_in_memory(probs, quality, (4, 6), mask_erosion_size=3, min_object_size=0,
                                        quality_level=1, boundary="clip")
    extent = expected["extent"]
    assert extent[3:-3, 3:-3].all() and extent.sum() == (30 - 6) * (37 - 6)


def test_erosion_radius_larger_than_the_raster_and_the_chunks():
    probs, quality = random_tile(5, shape=(12, 9))
    assert_same_as_in_memory(probs, quality, (2, 3), mask_erosion_size=20, edge_erosion_size=0, min_object_size=1,
                             quality_level=1)


def test_ensemble_subsets_and_nan():
    probs, quality = random_tile(3, shape=(50, 64))
    member, _ = random_tile(7, shape=(50, 64))
    assert np.isnan(probs).any()
    assert_same_as_in_memory(probs, quality, (13, 17), subsets={"m1": member, "m2": probs[::-1].copy()},
                             mask_erosion_size=2, min_object_size=4, quality_level=1)


def test_threaded_scheduler_gives_the_same_bytes():
    probs, quality = random_tile(0, shape=(80, 90))
    assert_same_as_in_memory(probs, quality, (17, 23), scheduler="threads", mask_erosion_size=5, quality_level=1)


def test_erode_mask_binarize_and_label_objects_on_dask_arrays_and_dataarrays():
    xr = pytest.importorskip("xarray")
    probs, quality = random_tile(9, shape=(40, 50))
    mask = quality > 0
    lazy_mask = xr.DataArray(da.from_array(mask, chunks=7), dims=("y", "x"), attrs={"a": 1})
    eroded = erode_mask(lazy_mask, 3, edge_size=2)
    assert isinstance(eroded, xr.DataArray) and isinstance(eroded.data, da.Array) and eroded.attrs == {"a": 1}
    np.testing.assert_array_equal(eroded.values, erode_mask(mask, 3, "cpu", edge_size=2))
    objects = binarize(da.from_array(probs, chunks=(9, 11)), 0.4, 5, da.from_array(mask, chunks=(9, 11)),
                       size_connectivity=4)
    assert isinstance(objects, da.Array) and objects.dtype == bool
    np.testing.assert_array_equal(objects.compute(), binarize(probs, 0.4, 5, mask, "cpu", size_connectivity=4))
    expected_labels, expected_count = label_objects(probs > 0.4)
    labels, count = label_objects(da.from_array(probs > 0.4, chunks=(6, 5)))
    np.testing.assert_array_equal(labels.compute(), expected_labels)
    assert count.compute() == expected_count


def test_an_xarray_dataset_stays_a_lazy_dataset_with_its_coordinates():
    xr = pytest.importorskip("xarray")
    probs, quality = random_tile(4, shape=(30, 40))
    tile = xr.Dataset({"probabilities": (("y", "x"), probs), "quality_data_mask": (("y", "x"), quality)},
                      coords={"y": np.arange(30) * -10.0, "x": np.arange(40) * 10.0}).chunk({"y": 8, "x": 16})
    out = prepare_export(tile, 0.5, 2, 4, "low_quality")
    assert isinstance(out, xr.Dataset) and "probabilities" in tile and "extent" not in tile
    assert all(isinstance(out[name].data, da.Array) for name in ("extent", "binarized_segmentation", "probabilities"))
    assert out["binarized_segmentation"].attrs["long_name"] == "Binarized Segmentation"
    expected = prepare_export(tile.compute(), 0.5, 2, 4, "low_quality", device="cpu")
    for name in ("extent", "binarized_segmentation", "probabilities"):
        np.testing.assert_array_equal(out[name].values, expected[name].values)
    np.testing.assert_array_equal(out["x"].values, tile["x"].values)


def test_nothing_is_computed_until_the_caller_asks():
    probs, quality = random_tile(1, shape=(20, 20))
    calls = []

    def counted(block):
        calls.append(1)
        return block

    tile = lazy_tile(probs, quality, 5)
    tile["probabilities"] = tile["probabilities"].map_blocks(counted, dtype=probs.dtype, meta=np.zeros((0, 0), probs.dtype))
    out = prepare_export(tile, 0.5, 2, 4, 1)
    assert not calls
    out["binarized_segmentation"].compute()
    assert calls


def test_bad_values_raise_when_computed():
    probs, quality = random_tile(1, shape=(20, 20))
    probs[13, 7] = 1.5
    out = prepare_export(lazy_tile(probs, quality, 5), 0.5, 2, 4, 1)  # lazy: no error yet
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        out["binarized_segmentation"].compute()
    quality[3, 3] = 7
    with pytest.raises(ValueError, match="quality_data_mask must hold 0"):
        prepare_export(lazy_tile(probs.clip(0, 1), quality, 5), 0.5, 2, 4, 1)["extent"].compute()
    with pytest.raises(ValueError, match="same shape"):
        prepare_export({"probabilities": da.zeros((4, 5), dtype=np.float32),
                        "quality_data_mask": da.zeros((5, 4), dtype=np.uint8)})
    with pytest.raises(TypeError, match="float probabilities"):
        prepare_export({"probabilities": da.zeros((4, 5), dtype=np.int16), "quality_data_mask": da.zeros((4, 5), dtype=np.uint8)})


def test_a_distributed_cluster_of_worker_processes_gives_the_same_bytes():
    distributed = pytest.importorskip("distributed")
    probs, quality = random_tile(6, shape=(90, 110))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert all(worker.startswith("tcp://") for worker in client.scheduler_info()["workers"])
        for boundary, connectivity in (("remove", 8), ("clip", 4)):
            options = dict(mask_erosion_size=4, min_object_size=5, quality_level=1, boundary=boundary,
                           size_connectivity=connectivity)
            expected = prepare_export({"probabilities": probs, "quality_data_mask": quality}, device="cpu", **options)
            lazy = prepare_export(lazy_tile(probs, quality, (23, 31)), **options)
            computed = client.compute([lazy["binarized_segmentation"], lazy["extent"]], sync=True)
            np.testing.assert_array_equal(computed[0], expected["binarized_segmentation"])
            np.testing.assert_array_equal(computed[1], expected["extent"])


@pytest.mark.parametrize("seed", range(6))
def test_polygonize_in_chunks_writes_the_in_memory_features(tmp_path, seed):
    """Objects crossing chunk sides (1-pixel chunks too) become one feature with statistics over
    all their pixels: attributes equal, geometries cover the same pixels with the same vertices."""
    pytest.importorskip("osgeo")
    from darts_postprocessing.core import polygonize

    rng = np.random.default_rng(seed)
    probs, _ = random_tile(seed, shape=(70, 90))
    binary = probs > 0.5
    geotransform = (500000.0, 10.0, 0.0, 7000000.0, 0.0, -10.0)
    count = polygonize(binary, geotransform, "EPSG:32606", str(tmp_path / "memory.gpkg"), layer="x",
                       probabilities=probs)
    expected = polygons_by_id(tmp_path / "memory.gpkg")
    for chunks in [(int(rng.integers(5, 30)), int(rng.integers(5, 30))), (1, 90), (70, 1)]:
        path = tmp_path / f"chunks-{chunks[0]}-{chunks[1]}.gpkg"
        lazy = polygonize(da.from_array(binary, chunks=chunks), geotransform, "EPSG:32606", str(path), layer="x",
                          probabilities=da.from_array(probs, chunks=chunks))
        assert not path.exists()  # lazy: written when computed, in one piece
        assert lazy.compute(scheduler="threads") == count
        written = polygons_by_id(path)
        assert sorted(written) == sorted(expected)
        for region, (attributes, geometry) in expected.items():
            assert written[region][0] == attributes
            other = written[region][1]
            assert other.IsValid() and geometry.SymDifference(other).IsEmpty()
            assert sum(len(r.GetPoints()) for p in other for r in p) == sum(len(r.GetPoints()) for p in geometry for r in p)


def test_object_areas_in_chunks():
    pytest.importorskip("osgeo")  # CRS handling
    from darts_postprocessing.core import object_areas

    probs, _ = random_tile(2, shape=(60, 70))
    binary = da.from_array(probs > 0.5, chunks=(7, 9))
    projected = (0.0, 10.0, 0.0, 0.0, 0.0, -10.0)
    np.testing.assert_array_equal(object_areas(binary, projected, 32606).compute(),
                                  object_areas(probs > 0.5, projected, 32606))
    geographic = (10.0, 0.01, 0.0, 70.0, 0.0, -0.01)  # per-row areas: sums of other blocks' partial sums
    np.testing.assert_allclose(object_areas(binary, geographic, "EPSG:4326").compute(),
                               object_areas(probs > 0.5, geographic, "EPSG:4326"), rtol=1e-12)


@pytest.mark.parametrize("chunks", [(9, 13), (1, 50), (40, 1)])
def test_object_statistics_in_chunks(chunks):
    from darts_postprocessing.core import object_statistics

    probs, _ = random_tile(6, shape=(40, 50))
    expected = object_statistics(probs > 0.5, probs)
    lazy = object_statistics(da.from_array(probs > 0.5, chunks=chunks), da.from_array(probs, chunks=chunks))
    table = lazy.compute()
    assert sorted(table) == sorted(expected) and expected["npixel"].size > 3
    for name, column in expected.items():
        np.testing.assert_array_equal(table[name], column, err_msg=name)


# -- exclusion masks and several thresholds -----------------------------------------------------

@pytest.mark.parametrize("seed", range(30))
def test_exclusion_on_random_chunkings(seed):
    rng = np.random.default_rng(2000 + seed)
    shape = (int(rng.integers(30, 90)), int(rng.integers(30, 90)))
    probs, quality = random_tile(seed, shape=shape)
    chunks = (random_chunks(rng, shape[0]), random_chunks(rng, shape[1]))
    expected = assert_same_as_in_memory(
        probs, quality, chunks, exclude=random_exclusion(seed, shape),
        bin_threshold=float(rng.choice([0.3, 0.5, 0.7])), mask_erosion_size=int(rng.choice([0, 1, 3, 7])),
        edge_erosion_size=rng.choice([None, 0, 2]), min_object_size=int(rng.choice([0, 1, 2, 5, 32])),
        quality_level=int(rng.integers(0, 3)), boundary=["remove", "clip"][seed % 2],
        size_connectivity=[8, 8, 4, 4][seed % 4])
    assert "binarized_segmentation" in expected


@pytest.mark.parametrize("boundary", ["remove", "clip"])
@pytest.mark.parametrize("size_connectivity", [4, 8])
def test_an_object_cut_by_the_exclusion_across_chunks(boundary, size_connectivity):
    """A ring split into two parts by a river in another chunk; a blob wholly in a lake that
    spans four chunks; in clip mode the parts are size-filtered over all chunks."""
    probs, quality = blank((40, 40))
    exclude = np.zeros((40, 40), np.uint8)
    probs[5:35, 5:8] = probs[5:35, 30:33] = probs[5:8, 5:33] = probs[32:35, 5:33] = 0.9  # a ring
    exclude[18:21, :] = 1  # a river cutting it into two U shapes of unequal size
    exclude[18:24, 30:33] = 1
    probs[15:25, 15:25] = 0.9  # a blob wholly in a lake around the corner of four chunks
    exclude[14:26, 14:26] = 1
    for min_size in (0, 60, 80):
        assert_same_as_in_memory(probs, quality, (10, 10), exclude=exclude, mask_erosion_size=0, min_object_size=min_size,
                                 quality_level=0, boundary=boundary, size_connectivity=size_connectivity)


def test_exclusion_in_binarize_on_dask_arrays():
    probs, quality = random_tile(9, shape=(40, 50))
    mask, exclude = quality > 0, random_exclusion(9, (40, 50))
    for boundary in ("remove", "clip"):
        lazy = binarize(da.from_array(probs, chunks=(9, 11)), 0.4, 5, da.from_array(mask, chunks=(9, 11)),
                        exclude=da.from_array(exclude, chunks=(7, 13)), boundary=boundary)
        np.testing.assert_array_equal(lazy.compute(), binarize(probs, 0.4, 5, mask, "cpu", exclude=exclude,
                                                               boundary=boundary))


def test_thresholds_on_dask_give_the_in_memory_bytes_and_counts():
    probs, quality = random_tile(2, shape=(60, 70))
    exclude = random_exclusion(2, (60, 70))
    options = dict(mask_erosion_size=3, min_object_size=6, quality_level=1)
    counts, lazy_counts = {}, {}
    expected = prepare_export_thresholds({"probabilities": probs, "quality_data_mask": quality}, [0.3, 0.6],
                                         device="cpu", exclude=exclude, object_counts=counts, **options)
    lazy = prepare_export_thresholds(lazy_tile(probs, quality, (13, 17)), [0.3, 0.6], object_counts=lazy_counts,
                                     exclude=da.from_array(exclude, chunks=(13, 17)), **options)
    computed, computed_counts = dask.compute({t: dict(r) for t, r in lazy.items()}, lazy_counts, scheduler="sync")
    assert computed_counts == counts
    for threshold, result in expected.items():
        for name in ("extent", "binarized_segmentation", "probabilities"):
            np.testing.assert_array_equal(computed[threshold][name], result[name], err_msg=f"{name} {threshold}")


@pytest.mark.parametrize("size, edge, level, block, nodata", [
    (0, 0, 1, 7, None), (3, 3, 1, 8, -1), (4, 0, 2, 5, None), (9, 2, 1, 4, -1), (25, 25, 1, 16, None), (2, 1, 0, 9, -1)])
def test_a_quality_file_eroded_as_it_is_read_gives_erode_masks_bytes(tmp_path, size, edge, level, block, nodata):
    """Each block read once with the erosion's halo around it (read_eroded_quality_lazy): the
    bytes of erode_mask in memory and of the scikit-image reference, for halos wider than the
    blocks and the raster too, a uint8 mask as stored and an int16 mask with nodata."""
    pytest.importorskip("osgeo")
    import reference
    from darts_postprocessing.core.lazy.blockwise import read_eroded_quality_lazy
    from writing import write_raster

    _, quality = random_tile(size + block, shape=(45, 61))
    stored = quality.astype(np.uint8)
    if nodata is not None:
        stored = quality.astype(np.int16)
        stored[np.random.default_rng(size).random(stored.shape) < 0.05] = nodata
    path = write_raster(tmp_path / "quality.tif", stored, nodata=nodata)
    lazy = read_eroded_quality_lazy(path, "the quality mask", block, level, size, edge)
    assert lazy.dtype == np.uint8 and lazy.chunks[0][0] == min(block, 45)
    valid = np.where(stored == (nodata if nodata is not None else 255), 0, stored) >= level
    expected = erode_mask(valid, size, "cpu", edge_size=edge)
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), expected)
    np.testing.assert_array_equal(expected, reference.erode_mask(valid, size, edge))


def test_the_write_locks_of_a_cluster_are_one_a_file_and_taken_on_its_workers():
    """blockwise.scheduler's locks(name) on a dask.distributed cluster of worker processes (the
    write of each window takes its file's lock there), with this Python's distributed."""
    distributed = pytest.importorskip("distributed")
    from darts_postprocessing.core.lazy.blockwise import _write_window, scheduler

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster:
        with scheduler(cluster.scheduler_address) as (client, locks):
            assert locks("a.tif") is locks("a.tif") and locks("a.tif") is not locks("b.tif")
            windows = [dask.delayed(_write_window)(np.zeros((4, 4)), 2 * (k % 2), 0, np.ones((2, 4)), locks(name))
                       for k, name in enumerate(["a.tif", "b.tif"] * 3)]
            assert client.compute(windows, sync=True) == [None] * 6
