"""Which Python modules the algorithms need and how to get them, without importing them."""

import importlib.util

REQUIRED = {"numpy": "python3-numpy", "scipy": "python3-scipy"}
OPTIONAL_GPU = {"cupy": "cupy-cuda12x"}


def missing_modules() -> list[str]:
    """Names of required modules that QGIS's Python cannot import."""
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def install_hint(missing: list[str]) -> str:
    debian = " ".join(REQUIRED[name] for name in missing)
    pip = " ".join(missing)
    return (f"The DARTS postprocessing algorithms need the Python module(s) {', '.join(missing)}, "
            f"which QGIS's Python cannot import. Install them into the Python that QGIS uses: "
            f"on Debian/Ubuntu `sudo apt install {debian}`; on Windows (OSGeo4W shell) or macOS "
            f"`python -m pip install {pip}`. Then restart QGIS.")
