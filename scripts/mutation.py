"""Mutation testing of the core with mutmut 3 (run by `make mutation`, in the venv).

mutmut 3 names a mutant after the module path of its file (with a leading `src.` dropped)
and only switches mutants in modules of that name, so the core is laid out in a scratch
folder as the package it is imported as, src/darts_postprocessing/core, with the tests beside
it (their conftest then imports the mutated copy as `darts_postprocessing`). The tests run are
the core tests that need neither GDAL nor dask's slow cases; mutmut runs, for each mutant,
only the tests that call the mutated function.

    python scripts/mutation.py [--files core/products/api.py ...] [--time-limit SECONDS] [--jobs N]

prints killed / survived / other per file and in all (also written to <workdir>/score.json).
A run cut off by the time limit reports the mutants it checked so far.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = ["core/kernels/postprocess.py", "core/kernels/runs.py", "core/kernels/checks.py", "core/products/api.py",
         "core/kernels/objects.py", "core/kernels/quality.py"]
TESTS = ["test_core_api.py", "test_core_objects.py", "test_core_quality.py", "test_core_vectorize.py", "test_core_percent.py",
         "test_core_files.py", "test_core_equivalence.py"]
PACKAGE = Path("src") / "darts_postprocessing"


def prepare(workdir: Path, files: list[str], tests: list[str]) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    package = workdir / PACKAGE
    shutil.copytree(REPO / "core", package / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "__init__.py", package / "__init__.py")
    shutil.copytree(REPO / "tests", package / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", "qgis", "gui", "test_*.py"))
    for test in tests:
        shutil.copy2(REPO / "tests" / test, package / "tests" / test)
    lines = ["[mutmut]", f"source_paths = {PACKAGE}", "only_mutate ="]
    lines += [f"    {PACKAGE / file}" for file in files]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {PACKAGE / 'tests' / test}" for test in tests]
    lines += ["pytest_add_cli_args =", "    -p", "    no:cacheprovider", "    --import-mode=importlib"]
    (workdir / "setup.cfg").write_text("\n".join(lines) + "\n")


def run(workdir: Path, jobs: int, time_limit: float) -> bool:
    """Run mutmut; False when the time limit cut it off (results so far are kept)."""  # noqa
    mutmut = Path(sys.executable).parent / "mutmut"
    process = subprocess.Popen([str(mutmut), "run", "--max-children", str(jobs)], cwd=workdir, start_new_session=True)
    try:
        process.wait(timeout=time_limit)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)  # mutmut saves what it has on Ctrl-C
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        return False


def score(workdir: Path, files: list[str]) -> dict:
    """{file: {status: count}} from mutmut's .meta files (exit codes, mapped as mutmut maps them)."""
    sys.path.insert(0, str(workdir))
    cwd = os.getcwd()
    os.chdir(workdir)  # mutmut reads its configuration from the working folder on import
    try:
        from mutmut.stats import status_by_exit_code
    finally:
        os.chdir(cwd)
    table = {}
    for file in files:
        meta = workdir / "mutants" / (str(PACKAGE / file) + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        counts = collections.Counter(status_by_exit_code[code] for code in codes.values())
        table[file] = dict(counts, total=len(codes))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", default=FILES, help="core files to mutate (default: %(default)s)")
    parser.add_argument("--tests", nargs="+", default=TESTS, help="test files in tests/ (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "mutation")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds (default: %(default)s)")
    args = parser.parse_args()

    prepare(args.workdir, args.files, args.tests)
    started = datetime.datetime.now()
    run(args.workdir, args.jobs, args.time_limit)
    minutes = (datetime.datetime.now() - started).total_seconds() / 60
    table = score(args.workdir, args.files)
    killed = sum(row.get("killed", 0) for row in table.values())
    survived = sum(row.get("survived", 0) for row in table.values())
    total = sum(row["total"] for row in table.values())
    checked = total - sum(row.get("not checked", 0) for row in table.values())
    finished = checked == total  # also False after a Ctrl-C or the time limit
    print(f"\nmutation score ({started:%Y-%m-%d}, {minutes:.1f} min, "
          f"{'complete' if finished else 'cut off: not every mutant was checked'}):")
    for file, row in table.items():
        other = {k: v for k, v in row.items() if k not in ("killed", "survived", "total")}
        print(f"  {file:22} killed {row.get('killed', 0):4}  survived {row.get('survived', 0):4}  "
              f"total {row['total']:4}  {other or ''}")
    print(f"  {'all':22} killed {killed:4}  survived {survived:4}  total {total:4}  (checked {checked}); "
          f"killed / checked = {killed / max(checked, 1):.1%}")
    (args.workdir / "score.json").write_text(json.dumps(
        {"date": f"{started:%Y-%m-%d}", "minutes": round(minutes, 1), "complete": finished, "files": table}, indent=1))
    print("survivors: cd build/mutation && ../../.venv/bin/mutmut results; ../../.venv/bin/mutmut show <name>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
