"""Which Python modules the algorithms need and how to get them, without importing them."""

import importlib.util

REQUIRED = {"numpy": "python3-numpy", "scipy": "python3-scipy"}
BLOCKS = {"dask": "python3-dask"}  # rasters larger than MEMORY_LIMIT, processed block by block
CLUSTER = {"distributed": "python3-distributed"}  # DASK_SCHEDULER


def missing_modules() -> list[str]:
    """Names of required modules that QGIS's Python cannot import."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def missing_for_blocks(cluster: bool = False) -> str | None:
    """None when the block-wise path can run, else what to install, in one sentence."""
    needed = {**BLOCKS, **(CLUSTER if cluster else {})}
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"needs the Python module(s) {', '.join(missing)}: on Debian/Ubuntu `sudo apt install "
            f"{' '.join(needed[name] for name in missing)}`; elsewhere `python -m pip install {' '.join(missing)}` "
            f"in the Python that QGIS uses")


def install_hint(missing: list[str]) -> str:
    debian = " ".join(REQUIRED[name] for name in missing)
    pip = " ".join(missing)
    return (f"The DARTS postprocessing algorithms need the Python module(s) {', '.join(missing)}, "
            f"which QGIS's Python cannot import. Install them into the Python that QGIS uses: "
            f"on Debian/Ubuntu `sudo apt install {debian}`; on Windows (OSGeo4W shell) or macOS "
            f"`python -m pip install {pip}`. Then restart QGIS.")
