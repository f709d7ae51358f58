"""darts:compareyears — which slumps are new, grew, shrank or are gone between years (the rules:
core/regions/compare_years.py; the run on files: core/regions/compare_years_files.py)."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from .base import DartsAlgorithm
from .exclusion import decode_source, vector_source
from .parameters import VectorFiles
from .paths import vector_files_of
from .styles import style_on_load


class CompareYearsAlgorithm(DartsAlgorithm):
    INPUT = "INPUT"
    YEAR_FIELD = "YEAR_FIELD"
    COVERAGE = "COVERAGE"
    TOLERANCE = "TOLERANCE"
    OBSERVED_SHARE = "OBSERVED_SHARE"
    OUTPUT = "OUTPUT"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    HELP = {
        INPUT: "Yearly slump maps: polygon layers whose features carry their year (e.g. processtiles' output, merged "
               "per year); one layer may hold several years. Any projected CRS; all are compared in the first one's.",
        COVERAGE: "What each year observed: polygons with the same year field (e.g. processtiles' <layer>_coverage). "
                  "Not set: the <layer>_coverage beside each map when there is one, else every place counts as "
                  "observed.",
        OUTPUT: "One feature per slump and pair of consecutive years: year_from, year_to, change (new, grown, stable, "
                "shrunk, gone, unobserved), match (one, merge, split, many, none), area_from_m2, area_to_m2, "
                "change_m2, change_m2_per_year, ids_from and ids_to (FIDs of the matched features).",
        OUTPUT_REPORT: "HTML: per pair of years and class the number of slumps and their areas.",
    }

    def name(self):
        return "compareyears"

    def displayName(self):  # noqa: N802
        return self.tr("Compare years")

    def shortHelpString(self):  # noqa: N802
        return self.tr(
            "<p>Which slumps are <b>new</b>, which <b>grew</b>, <b>shrank</b> or stayed <b>stable</b>, which are "
            "<b>gone</b>, between each pair of consecutive years of DARTS maps.</p>"
            "<p>Slumps of the two years that overlap (shared area; touching does not count) are one slump followed "
            "over the years, also when two merge (match = merge), one splits (split) or both (many). Its area change "
            "(later minus earlier, summed over its features) within <b>tolerance</b> times the earlier area is "
            "stable, above it grown, below it shrunk. A slump of the later year only is new when the earlier year "
            "observed that place, one of the earlier year only is gone when the later year observed it; otherwise "
            "they are <b>unobserved</b>. A place counts as observed when at least <b>observed share</b> of the "
            "slump lies in that year's coverage; a year without coverage is observed everywhere.</p>"
            "<p>Areas are in the units of the first map's CRS, which must be projected (m² for UTM or EPSG:3413).</p>"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(VectorFiles(self.INPUT, self.tr("Yearly slump maps"),
                                      QgsProcessing.SourceType.TypeVectorPolygon))
        self.add_parameter_with_help(
            QgsProcessingParameterString(self.YEAR_FIELD, self.tr("Year field"), defaultValue="year"), False,
                     "The field that holds each feature's year (a number or a date)")
        self.addParameter(VectorFiles(self.COVERAGE, self.tr("Coverage per year (observed area)"),
                                      QgsProcessing.SourceType.TypeVectorPolygon, optional=True))
        tolerance = QgsProcessingParameterNumber(self.TOLERANCE, self.tr("Stable within (share of the earlier area)"),
                                                 QgsProcessingParameterNumber.Type.Double, defaultValue=0.1,
                                                 minValue=0.0)
        self.add_parameter_with_help(tolerance, False, "An area change of at most this share of the earlier area (0.1 = 10 %) is "
                                       "stable")
        share = QgsProcessingParameterNumber(self.OBSERVED_SHARE, self.tr("Observed share"),
                                             QgsProcessingParameterNumber.Type.Double, defaultValue=0.5,
                                             minValue=0.001, maxValue=1.0)
        self.add_parameter_with_help(
            share, True, "A slump's place counts as observed in a year when at least this share of it lies "
                                  "in that year's coverage")
        self.addParameter(QgsProcessingParameterVectorDestination(self.OUTPUT, self.tr("Changes"),
                                                                  QgsProcessing.SourceType.TypeVectorPolygon))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_REPORT, self.tr("Report"),
                                                                self.tr("HTML files (*.html)"), optional=True))

    def sources(self, parameters, name, context, outputs, folder):
        """(file, layer, filter) of each layer of the multiple-layer parameter `name` (file paths
        not loaded as layers: see VectorFiles)."""
        files = vector_files_of(parameters.get(name))
        if files:
            return [decode_source(value) for value in files]
        sources = []
        for index, layer in enumerate(self.parameterAsLayerList(parameters, name, context)):
            sources.append(vector_source(layer, context, lambda index=index: outputs.scratch(
                os.path.join(folder, f"{name.lower()}-{index}.gpkg")), name))
        return sources

    def input_paths(self, parameters, context):
        paths = super().input_paths(parameters, context)
        for name in (self.INPUT, self.COVERAGE):
            files = vector_files_of(parameters.get(name))
            paths += [value.split("|")[0] for value in files] if files else [
                layer.source().split("|")[0] for layer in self.parameterAsLayerList(parameters, name, context)]
        return paths

    def execute(self, parameters, context, feedback, outputs):
        """The core's pipeline on files (core.regions.compare_years_files); the layer styled on load."""
        from ..core.regions.compare_years_files import CompareYearsSettings, compare_years_files
        from ..core.regions.report import CHANGES_TITLE
        from .paths import geopackage_layer

        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None
        settings = CompareYearsSettings(self.parameterAsString(parameters, self.YEAR_FIELD, context),
                                        self.parameterAsDouble(parameters, self.TOLERANCE, context),
                                        self.parameterAsDouble(parameters, self.OBSERVED_SHARE, context))
        folder = os.path.dirname(os.path.abspath(output.split("|")[0]))
        target, layer = geopackage_layer(output)

        compare_years_files(self.sources(parameters, self.INPUT, context, outputs, folder), target,
                            self.sources(parameters, self.COVERAGE, context, outputs, folder), settings,
                            self.progress_reporter(feedback), layer=layer, report=report, files=outputs,
                            tags=outputs.tags, log=self.log_to(feedback), title=self.tr(CHANGES_TITLE))
        style_on_load(context, output, "changes", self.tr("Changes between years"))
        feedback.setProgress(100)
        return {self.OUTPUT: output, **({self.OUTPUT_REPORT: report} if report else {})}
