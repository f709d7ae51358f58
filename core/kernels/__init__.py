"""Kernels: the rules of the postprocessing on plain arrays (numpy on the CPU, cupy on a GPU).

Row runs, erosion of the valid extent, thresholding and binarizing, objects and their
statistics, quality masks, what pixel values mean (encodings), quick-look images, devices and
the checks of every argument. No files, no dask, no QGIS: each kernel takes arrays and gives
arrays, so the in-memory, block-wise, dask and multi-tile paths all compose the same ones.
Imports: numpy, scipy, cupy (optional) and `definitions` only.
"""
