"""qgis_process as a subprocess, in a given environment (a throw-away profile)."""

import subprocess


def qgis_process(environment, *arguments, **options):
    """The finished qgis_process run; `options` go to subprocess.run (e.g. preexec_fn)."""
    return subprocess.run(["qgis_process", *arguments], env=environment, capture_output=True, text=True, encoding="utf-8",
                          errors="replace", timeout=300,
                          **options)


def binarize_without(module: str, package_parent, parameter_sets: list) -> subprocess.CompletedProcess:
    """darts:binarize in a fresh QGIS Python where `module` cannot be imported (as if it were not
    installed), once per parameter set: stdout has 'ERROR: <message>' lines and, per run i,
    'RUN i OK: <ok> ALGORITHMS: <algorithms the provider loaded>'."""
    script = f"""
import sys, os
sys.modules[{module!r}] = None  # make 'import {module}' fail as if it were not installed
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if name.split('.')[0] == {module!r} else real_find_spec(name, *a, **k)
os.environ['QT_QPA_PLATFORM'] = 'offscreen'
sys.path.insert(0, {str(package_parent)!r})
from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback
app = QgsApplication([], False); app.initQgis()
from darts_postprocessing.darts_provider import DartsProvider
provider = DartsProvider(); QgsApplication.processingRegistry().addProvider(provider)
algorithm = QgsApplication.processingRegistry().createAlgorithmById('darts:binarize')
class Errors(QgsProcessingFeedback):
    def reportError(self, text, fatal=False):
        print('ERROR:', text)
for index, parameters in enumerate({parameter_sets!r}):
    results, ok = algorithm.run(parameters, QgsProcessingContext(), Errors())
    print('RUN', index, 'OK:', ok, 'ALGORITHMS:', len(provider.algorithms()))
"""
    return subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=120)


def run_text(environment, *arguments, **options):
    """qgis_process run ARGUMENTS: (exit status, everything it printed, stdout then stderr)."""
    result = qgis_process(environment, "run", *arguments, **options)
    return result.returncode, result.stdout + result.stderr
