"""Hand-made tiles for the equivalence tests, each named for what it probes."""

import numpy as np


def _blank(shape=(40, 40)):
    return np.zeros(shape, np.float32), np.full(shape, 2, np.uint8)


def object_of_exact_min_size():
    probs, quality = _blank()
    probs[10:14, 10:18] = 0.9  # 32 pixels
    probs[25:28, 10:20] = 0.9  # 30 pixels plus one diagonal pixel = 31 with 8-conn
    probs[28, 20] = 0.9
    return probs, quality


def diagonal_only_contact():
    probs, quality = _blank()
    # Two 4x4 squares touching only at a corner: one object of 32 with 8-connectivity,
    # two of 16 with 4-connectivity.
    probs[10:14, 10:14] = 0.8
    probs[14:18, 14:18] = 0.8
    # A staircase of single pixels touching diagonally: 8-connected, 4-isolated.
    for i in range(20):
        probs[20 + i // 2 if i < 40 else 0, 5 + i] = 0.7 if i % 2 == 0 else 0.0
    for i in range(12):
        probs[25 + i, 20 + i] = 0.75
    return probs, quality


def object_one_pixel_from_extent():
    probs, quality = _blank()
    quality[:, 30:] = 0
    probs[10:20, 20:29] = 0.9   # one pixel away from the invalid band at erosion 0
    probs[25:35, 20:30] = 0.9   # touches it
    return probs, quality


def all_invalid():
    probs = np.random.default_rng(3).random((30, 30)).astype(np.float32)
    return probs, np.zeros((30, 30), np.uint8)


def empty_tile():
    return _blank((25, 33))


def objects_on_the_raster_edge():
    probs, quality = _blank()
    probs[0:8, 0:8] = 0.9
    probs[32:40, 15:25] = 0.95
    probs[15:25, 34:40] = 0.6
    return probs, quality


def nan_inside_objects():
    probs, quality = _blank()
    probs[5:15, 5:15] = 0.9
    probs[9:11, :] = np.nan  # splits the square in two
    probs[20:30, 20:30] = np.nan
    return probs, quality


def values_at_the_threshold():
    probs, quality = _blank()
    probs[5:15, 5:15] = 0.5  # not > 0.5: no object
    probs[20:30, 20:30] = np.nextafter(np.float32(0.5), np.float32(1))
    return probs, quality


ALL = {f.__name__: f for f in [object_of_exact_min_size, diagonal_only_contact, object_one_pixel_from_extent,
                               all_invalid, empty_tile, objects_on_the_raster_edge, nan_inside_objects,
                               values_at_the_threshold]}
