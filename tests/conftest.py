"""Make the repository importable as the package `darts_postprocessing`, whatever the
checkout's folder is called, and share test fixtures."""

import atexit
import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests' helpers: reference, tiles

if REPO.name == "darts_postprocessing":
    sys.path.insert(0, str(REPO.parent))
else:
    _link_dir = Path(tempfile.mkdtemp(prefix="darts-pkg-"))
    os.symlink(REPO, _link_dir / "darts_postprocessing")
    sys.path.insert(0, str(_link_dir))
    # The link, not the repository it points to, is removed when the tests end.
    atexit.register(lambda: (os.unlink(_link_dir / "darts_postprocessing"), os.rmdir(_link_dir)))

PACKAGE_PARENT = Path(sys.path[0]) if REPO.name != "darts_postprocessing" else REPO.parent


@pytest.fixture(scope="session")
def package_parent() -> Path:
    """Folder that holds `darts_postprocessing` (the repo itself or a link to it)."""
    return PACKAGE_PARENT
