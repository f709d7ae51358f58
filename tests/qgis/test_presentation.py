"""What a desktop user sees, checked headless: parameter labels and tooltips, toolbox names,
where and under which names the outputs are loaded, the run's summary and its results."""

import re
from pathlib import Path

from qgis import processing
from qgis.core import QgsLayerTreeGroup, QgsProcessingContext, QgsProject
from sample_tile import write_sample_tile
from feedback import Log

REPO = Path(__file__).resolve().parents[2]


def algorithms(provider):
    return sorted(provider.algorithms(), key=lambda algorithm: algorithm.name())


def test_every_parameter_has_a_tooltip_and_enums_have_labels(provider):
    for algorithm in algorithms(provider):
        assert algorithm.group() == "" and algorithm.groupId() == ""  # one level in the toolbox
        assert len(algorithm.displayName()) <= 26, algorithm.displayName()  # fits the toolbox
        for parameter in algorithm.parameterDefinitions():
            assert parameter.help().strip(), f"{algorithm.id()} {parameter.name()}"
            if parameter.type() == "enum":
                assert parameter.usesStaticStrings()
                labels = parameter.metadata()["widget_wrapper"]["labels"]
                assert sorted(labels) == sorted(parameter.options()), parameter.name()
                assert all(labels[value] != value for value in labels), labels
    threshold = provider.algorithm("prepareexport").parameterDefinition("THRESHOLD")
    assert threshold.metadata()["widget_wrapper"]["decimals"] == 2


def test_raw_values_still_run(provider, tmp_path):
    """The ids qgis_process and saved models pass keep working (labels are for the widgets)."""
    probabilities, quality = write_sample_tile(str(tmp_path / "t"), size=120, seed=4)
    results = processing.run("darts:prepareexport", {
        "PROBABILITIES": probabilities, "QUALITY_MASK": quality, "QUALITY_LEVEL": "high_quality", "DEVICE": "cpu",
        "SIZE_CONNECTIVITY": "4", "BOUNDARY": "clip", "PROBABILITY_SCALE": "percent", "MASK_EROSION_SIZE": 2,
        "OUTPUT_BINARIZED": str(tmp_path / "b.tif"), "OUTPUT_EXTENT": str(tmp_path / "e.tif")})
    assert "OUTPUT_SUBSET_BINARIZED" not in results  # no subsets: no empty result


def tile(tmp_path, name, seed):
    """A DARTS tile folder `name` (probabilities.tif, quality_data_mask.tif)."""
    folder = tmp_path / name
    write_sample_tile(str(folder), size=160, seed=seed)
    return folder


def tree(group):
    return [(child.name(), tree(child)) if isinstance(child, QgsLayerTreeGroup) else child.name()
            for child in group.children()]


def test_layers_load_in_one_group_per_tile_in_a_fixed_order(provider, tmp_path):
    project = QgsProject.instance()
    project.clear()
    for index, name in enumerate(["tile_A", "tile_B"]):
        folder = tile(tmp_path, name, index + 5)
        processing.runAndLoadResults("darts:prepareexport", {
            "PROBABILITIES": str(folder / "probabilities.tif"), "QUALITY_MASK": str(folder / "quality_data_mask.tif"),
            "THRESHOLD": 0.4, "MASK_EROSION_SIZE": 2, "MIN_OBJECT_SIZE": 8,
            "OUTPUT_BINARIZED": str(folder / "b.tif"), "OUTPUT_EXTENT": str(folder / "e.tif"),
            "OUTPUT_PROBABILITIES": str(folder / "p.tif"), "OUTPUT_POLYGONS": str(folder / "s.gpkg")})
    outputs = ["Object polygons", "Binarized segmentation", "Masked probabilities", "Extent"]
    assert tree(project.layerTreeRoot()) == [
        (f"{name} (threshold 0.40)", [f"{output} ({name})" for output in outputs]) for name in ("tile_B", "tile_A")]
    project.clear()


def test_group_names_show_the_thresholds_used(provider, tmp_path):
    """Two decimals, more when the threshold needs them; every threshold of a THRESHOLDS run."""
    project = QgsProject.instance()
    project.clear()
    folder = tile(tmp_path, "tile_T", 9)
    for extra in ({"THRESHOLD": 0.425}, {"THRESHOLDS": "0.4,0.425"}):
        processing.runAndLoadResults("darts:prepareexport", {
            "PROBABILITIES": str(folder / "probabilities.tif"), "QUALITY_MASK": str(folder / "quality_data_mask.tif"),
            "MASK_EROSION_SIZE": 2, "MIN_OBJECT_SIZE": 8, **extra,
            "OUTPUT_BINARIZED": str(folder / "b.tif"), "OUTPUT_EXTENT": str(folder / "e.tif")})
    assert [group for group, _ in tree(project.layerTreeRoot())] == ["tile_T (thresholds 0.40, 0.425)",
                                                                     "tile_T (threshold 0.425)"]
    project.clear()


def test_summary_ends_the_log_and_matches_the_report(provider, tmp_path):
    folder = tile(tmp_path, "tile", 8)
    feedback = Log(warnings=False)
    log = feedback.lines  # the run's infos, in order
    processing.run("darts:prepareexport", {
        "PROBABILITIES": str(folder / "probabilities.tif"), "QUALITY_MASK": str(folder / "quality_data_mask.tif"),
        "MASK_EROSION_SIZE": 3, "MIN_OBJECT_SIZE": 16, "OUTPUT_BINARIZED": str(tmp_path / "b.tif"),
        "OUTPUT_EXTENT": str(tmp_path / "e.tif"), "OUTPUT_REPORT": str(tmp_path / "r.html")},
        context=QgsProcessingContext(), feedback=feedback)
    page = (tmp_path / "r.html").read_text()
    number = {key: re.search(f'id="{key}">([^<]*)<', page).group(1) for key in
              ("objects", "removed_at_boundary", "removed_too_small", "kept_objects", "kept_area_m2")}
    assert int(number["kept_objects"]) > 0 and int(number["removed_at_boundary"]) > 0
    ours = [line for line in log if not line.startswith("Results: {")]  # QGIS's own results line comes last
    assert ours[-1] == (f"Result: {number['kept_objects']} objects kept; removed: {number['removed_at_boundary']} "
                       f"touching invalid data or the tile edge, {number['removed_too_small']} smaller than the minimum "
                       f"size (of {number['objects']} objects above the threshold). "
                       f"Kept area: {float(number['kept_area_m2']) / 1e6:.4f} km².")


def test_qgis_process_prints_no_empty_subset_line(profile, sample, tmp_path):
    from qgis_cli import qgis_process

    result = qgis_process(profile, "run", "darts:prepareexport", "--", f"PROBABILITIES={sample['probabilities']}",
                          f"OUTPUT_BINARIZED={tmp_path / 'b.tif'}", f"OUTPUT_EXTENT={tmp_path / 'e.tif'}")
    assert result.returncode == 0, result.stderr
    assert "OUTPUT_BINARIZED:" in result.stdout and "OUTPUT_SUBSET_BINARIZED" not in result.stdout


def test_model_reads_like_prepareexport(provider, tmp_path):
    """The shipped model: inputs in prepareexport's order with a quality level, and its layers
    loaded under the model's output names, polygons on top."""
    from qgis.core import QgsProcessingModelAlgorithm

    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(str(REPO / "resources" / "models" / "darts_postprocessing.model3"))
    assert [parameter.parameterName() for parameter in model.orderedParameters()] == [
        "probabilities", "quality_mask", "threshold", "erosion_size", "min_object_size", "quality_level"]
    assert model.parameterDefinition("quality_level").options() == ["none", "low_quality", "high_quality"]
    assert all(model.helpContent().get(definition.name()) for definition in model.parameterDefinitions()
               if not definition.isDestination())
    folder = tile(tmp_path, "tile_M", 9)
    project = QgsProject.instance()
    project.clear()
    processing.runAndLoadResults(model, {
        "probabilities": str(folder / "probabilities.tif"), "quality_mask": str(folder / "quality_data_mask.tif"),
        "quality_level": "high_quality", "erosion_size": 2, "min_object_size": 8,
        "binarized_segmentation": str(tmp_path / "b.tif"), "extent": str(tmp_path / "e.tif"),
        "object_polygons": str(tmp_path / "p.gpkg")})
    assert [layer.name() for layer in project.layerTreeRoot().layerOrder()] == [
        "Object polygons", "Binarized segmentation", "Extent"]
    project.clear()
