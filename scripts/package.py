#!/usr/bin/env python3
"""Stage the plugin as the folder `darts_postprocessing` (no tests, no dev files, with the
generated help pages in help/), and optionally zip it or install it into a QGIS profile.

    python3 scripts/package.py stage DEST_PARENT     -> DEST_PARENT/darts_postprocessing/
    python3 scripts/package.py zip dist/darts_postprocessing.zip
    python3 scripts/package.py deploy PLUGINS_FOLDER  (e.g. ~/.local/share/QGIS/QGIS3/profiles/default/python/plugins)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "darts_postprocessing"
SHIPPED = ["metadata.txt", "__init__.py", "__main__.py", "cli.py", "plugin.py", "darts_provider.py", "definitions.py",
           "dependencies.py", "README.md",
           "LICENSE",
           "algorithms", "core", "resources"]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def stage(parent: str) -> str:
    """Copy the shipped files into parent/darts_postprocessing (replacing it); returns that path."""
    target = os.path.join(parent, NAME)
    if os.path.islink(target):
        os.remove(target)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    for item in SHIPPED:
        source = os.path.join(REPO, item)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, item), ignore=IGNORE)
        else:
            shutil.copy2(source, target)
    # The help pages the dialogs' help button opens, generated from the algorithms and README
    # (scripts/build_help.py), in a fresh QGIS Python of their own.
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "build_help.py"), target], check=True,
                   stdout=subprocess.DEVNULL, env=dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONDONTWRITEBYTECODE="1"))
    return target


def make_zip(path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = stage(tmp)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for root, _, files in os.walk(folder):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    archive.write(full, os.path.relpath(full, tmp))
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("stage", "zip", "deploy"):
        sys.exit(__doc__)
    command, destination = sys.argv[1:]
    print(make_zip(destination) if command == "zip" else stage(destination))
