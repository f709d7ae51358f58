"""`python3 -m darts_postprocessing ALGORITHM KEY=VALUE ...`: the algorithms without QGIS (cli.py)."""

import sys

from .cli import main

sys.exit(main())
