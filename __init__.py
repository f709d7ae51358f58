"""DARTS postprocessing: a QGIS Processing plugin around a pure-Python core.

Importing this package imports nothing from QGIS; QGIS calls `classFactory` to load the plugin.
"""


def classFactory(iface):  # noqa: N802 (name fixed by QGIS)
    from .plugin import DartsPostprocessingPlugin

    return DartsPostprocessingPlugin(iface)
