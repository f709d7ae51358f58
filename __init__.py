"""DARTS postprocessing: a QGIS Processing plugin around a pure-Python core.

Importing this package imports nothing from QGIS; QGIS calls `classFactory` to load the plugin.
"""


def classFactory(iface):  # noqa: N802 (name and argument fixed by QGIS)
    """The plugin needs no `iface`: it only adds a Processing provider (qgis_process has no iface)."""
    from .plugin import DartsPostprocessingPlugin

    return DartsPostprocessingPlugin()
