"""qgis_process as a subprocess, in a given environment (a throw-away profile)."""

import subprocess


def qgis_process(environment, *arguments, **options):
    """The finished qgis_process run; `options` go to subprocess.run (e.g. preexec_fn)."""
    return subprocess.run(["qgis_process", *arguments], env=environment, capture_output=True, text=True, encoding="utf-8",
                          errors="replace", timeout=300,
                          **options)
