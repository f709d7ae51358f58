"""QGIS plugin entry: registers the DARTS Processing provider (toolbox, modeler, qgis_process)."""

from qgis.core import QgsApplication


class DartsPostprocessingPlugin:
    """Adds the provider; `initProcessing` is what qgis_process calls."""

    def __init__(self):
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS API)
        from .darts_provider import DartsProvider

        provider = DartsProvider()
        # The registry refuses (and deletes) a second provider "darts", e.g. of a second copy of
        # the plugin: keep only one that was added, so unload never touches a deleted object.
        if QgsApplication.processingRegistry().addProvider(provider):
            self.provider = provider

    def initGui(self):  # noqa: N802 (QGIS API)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
