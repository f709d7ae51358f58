"""Products: what a user asks for on one raster or tile.

Upstream's API (`erode_mask`, `binarize`, `prepare_export`, over numpy, cupy, xarray or dask;
also `label_objects` and `object_statistics`), polygons of objects (`polygonize`,
`object_areas`), DARTS' tile folder (`export_tile`), and one pipeline per algorithm on files.
Each chooses the eager kernels or their lazy compositions by its input. Imports: `lazy`,
`files`, `kernels` and `definitions`.
"""
