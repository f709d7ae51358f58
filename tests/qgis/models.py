"""Processing models built in the tests, as a user would draw them in the graphical modeler."""

from qgis.core import (
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterFile,
)


def processtiles_then_extract(field: str, operator: int, value: str, output: str) -> QgsProcessingModelAlgorithm:
    """A model: a folder of tiles (parameter "tiles") through darts:processtiles (1 worker), then
    QGIS's 'Extract by attribute' (`field` `operator` `value`, QGIS's operator numbers) into the
    model output described as `output` (its parameter name is that, lowered, spaces as _)."""
    model = QgsProcessingModelAlgorithm("tiles then extract", "DARTS tests")
    folder = QgsProcessingParameterFile("tiles", "Tiles", behavior=QgsProcessingParameterFile.Behavior.Folder)
    model.addModelParameter(folder, QgsProcessingModelParameter("tiles"))
    merge = QgsProcessingModelChildAlgorithm("darts:processtiles")
    merge.setChildId("merge")
    merge.addParameterSources("INPUT_FOLDER", [QgsProcessingModelChildParameterSource.fromModelParameter("tiles")])
    merge.addParameterSources("WORKERS", [QgsProcessingModelChildParameterSource.fromStaticValue(1)])
    extract = QgsProcessingModelChildAlgorithm("native:extractbyattribute")
    extract.setChildId("extract")
    extract.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromChildOutput("merge", "OUTPUT")])
    for name, setting in (("FIELD", field), ("OPERATOR", operator), ("VALUE", value)):
        extract.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(setting)])
    model_output = QgsProcessingModelOutput("extracted", output)
    model_output.setChildOutputName("OUTPUT")
    extract.setModelOutputs({"extracted": model_output})
    model.addChildAlgorithm(merge)
    model.addChildAlgorithm(extract)
    model.updateDestinationParameters()
    return model
