"""Rasters larger than MEMORY_LIMIT: the block-wise path (GDAL windows, Dask) gives the same
files as the in-memory path, through processing.run, a VRT mosaic, qgis_process and a real
dask.distributed cluster of worker processes."""

import os

import numpy as np
import pytest
from osgeo import gdal

import processing
from qgis.core import QgsProcessingFeedback
from rasters import read
from sample_tile import write_sample_tile

gdal.UseExceptions()
SIZE = 1300  # with MEMORY_LIMIT=1 (MB): blocks of 512 x 512, 3 x 3 of them, the last ones cut


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    probabilities, quality = write_sample_tile(str(folder / "input"), size=SIZE, seed=4)
    return {"probabilities": probabilities, "quality": quality, "folder": folder}


def both_paths(algorithm, parameters, outputs, folder, **block_options):
    """Run `algorithm` in memory and block-wise; the output files' pixels, for each path."""
    results = {}
    for mode, extra in (("memory", {}), ("blocks", {"MEMORY_LIMIT": 1, **block_options})):
        target = folder / mode
        feedback = Log()
        run = processing.run(algorithm, {**parameters, **extra, **{o: str(target / f"{o}.tif") for o in outputs}},
                             feedback=feedback)
        assert ("Processing in blocks of 512 x 512" in feedback.text) == (mode == "blocks"), feedback.text
        results[mode] = {o: read(run[o]) for o in outputs}
        assert not [f for f in os.listdir(target) if "partial" in f]
    return results


class Log(QgsProcessingFeedback):
    def __init__(self):
        super().__init__()
        self.text = ""

    def pushInfo(self, info):  # noqa: N802
        self.text += info + "\n"


def assert_same(results, outputs):
    for output in outputs:
        memory, blocks = results["memory"][output], results["blocks"][output]
        assert memory.dtype == blocks.dtype, output
        np.testing.assert_array_equal(blocks, memory, err_msg=output)


def test_erodemask_in_blocks(provider, big, tmp_path):
    results = both_paths("darts:erodemask", {"MASK": big["quality"], "SIZE": 20, "EDGE_SIZE": 7}, ["OUTPUT"], tmp_path)
    assert_same(results, ["OUTPUT"])
    assert 0 < results["memory"]["OUTPUT"].mean() < 1


@pytest.mark.parametrize("connectivity", ["8", "4"])
def test_binarize_in_blocks(provider, big, tmp_path, connectivity):
    results = both_paths("darts:binarize", {"PROBABILITIES": big["probabilities"], "MASK": big["quality"],
                                            "THRESHOLD": 0.4, "MIN_OBJECT_SIZE": 40,
                                            "SIZE_CONNECTIVITY": connectivity}, ["OUTPUT"], tmp_path)
    assert_same(results, ["OUTPUT"])
    assert results["memory"]["OUTPUT"].any()


def test_block_size_follows_the_memory_limit():
    from darts_postprocessing.core.blockwise import block_size

    assert block_size(14, 1, 2) == 512 and block_size(14, 10 ** 6, 2) == 8192
    assert block_size(14, 3000, 2) % 256 == 0 and 512 < block_size(14, 3000, 2) < 8192
