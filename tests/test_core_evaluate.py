"""Scores of a map against reference slumps (core/evaluate.py): hand-computed cases, the sweep
against prepare_export run setting by setting, scikit-learn's pixel scores on random rasters,
and reference polygons burnt onto a grid from real GeoPackages."""

import numpy as np
import pytest
from darts_postprocessing.core import prepare_export
from darts_postprocessing.core.regions.evaluate import evaluate, greedy_matches, pixel_scores

NO_EROSION = dict(quality_level="none", mask_erosion_size=0, edge_erosion_size=0)


def tile_of(probabilities, quality=None):
    probabilities = np.asarray(probabilities, np.float32)
    if quality is None:
        quality = np.full(probabilities.shape, 2, np.uint8)
    return {"probabilities": probabilities, "quality_data_mask": quality}


def square(shape, rows, cols, value=1):
    out = np.zeros(shape, np.int32)
    out[rows[0]:rows[1], cols[0]:cols[1]] = value
    return out


def only(evaluation):
    (setting,) = evaluation.settings
    return setting.scores


def test_one_slump_half_found():
    reference = square((40, 40), (10, 20), (10, 20))
    probabilities = square((40, 40), (10, 20), (10, 15)) * 0.9
    scores = only(evaluate(tile_of(probabilities), reference, [0.5], [0], **NO_EROSION))
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"], scores["pixel_tn"]) == (50, 0, 50, 1500)
    assert scores["pixel_iou"] == 0.5 and scores["pixel_precision"] == 1.0 and scores["pixel_recall"] == 0.5
    assert scores["pixel_f1"] == pytest.approx(2 / 3)
    # object IoU 50/100 = 0.5: a match at min_iou 0.5 (at least), none at 0.6
    assert (scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (1, 0, 0)
    assert scores["object_f1"] == 1.0
    strict = only(evaluate(tile_of(probabilities), reference, [0.5], [0], min_iou=0.6, **NO_EROSION))
    assert (strict["object_tp"], strict["object_fp"], strict["object_fn"]) == (0, 1, 1)
    assert strict["object_precision"] == strict["object_recall"] == strict["object_f1"] == 0.0
    assert strict["found"] == 1 and strict["found_share"] == 1.0


def test_two_predictions_on_one_reference():
    reference = square((40, 40), (10, 20), (10, 20))
    probabilities = (square((40, 40), (10, 20), (10, 14)) + square((40, 40), (10, 20), (16, 20))) * 0.9
    scores = only(evaluate(tile_of(probabilities), reference, [0.5], [0], **NO_EROSION))
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"]) == (80, 0, 20)
    # each object's IoU is 40/100: no match at 0.5; both overlap the slump, which is found
    assert (scores["predicted_objects"], scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (2, 0, 2, 1)
    assert scores["found"] == 1
    loose = only(evaluate(tile_of(probabilities), reference, [0.5], [0], min_iou=0.3, **NO_EROSION))
    # one-to-one: only one of the two matches the slump
    assert (loose["object_tp"], loose["object_fp"], loose["object_fn"]) == (1, 1, 0)
    assert loose["object_precision"] == 0.5 and loose["object_recall"] == 1.0
    assert loose["object_f1"] == pytest.approx(2 / 3)


def test_reference_outside_the_extent_is_not_counted():
    shape = (40, 60)
    quality = np.full(shape, 2, np.uint8)
    quality[:, 40:] = 0  # invalid right part
    reference = square(shape, (5, 15), (5, 15), 1) + square(shape, (20, 30), (45, 55), 2) \
        + square(shape, (31, 36), (30, 50), 3)  # 1 inside, 2 wholly outside, 3 half outside
    probabilities = square(shape, (5, 15), (5, 15)) * 0.9
    evaluation = evaluate(tile_of(probabilities, quality), reference, [0.5], [0], quality_level=1,
                          mask_erosion_size=0, edge_erosion_size=0)
    scores = only(evaluation)
    assert evaluation.reference.npixel.tolist() == [100, 0, 50]  # slump 3: its 50 pixels inside the extent
    assert (scores["reference_slumps"], scores["object_tp"], scores["object_fn"]) == (2, 1, 1)
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"]) == (100, 0, 50)
    assert scores["pixel_tn"] == 40 * 40 - 150
    assert evaluation.missed().tolist() == [3]


def test_percent_probabilities_pass_at_the_threshold_itself():
    # DARTS' uint8 50 read as 0.5: passes 0.5 as percent (v >= 100 t), not as a fraction (p > t)
    reference = square((30, 30), (5, 15), (5, 15))
    probabilities = reference * np.float32(50) / np.float32(100)
    percent = only(evaluate(tile_of(probabilities), reference, [0.5], [0], probability_scale="percent", **NO_EROSION))
    fraction = only(evaluate(tile_of(probabilities), reference, [0.5], [0], **NO_EROSION))
    assert (percent["pixel_tp"], percent["object_tp"]) == (100, 1)
    assert (fraction["pixel_tp"], fraction["object_tp"]) == (0, 0)


def test_no_reference_inside_the_extent_is_an_error():
    quality = np.zeros((20, 20), np.uint8)
    quality[:, :10] = 2
    reference = square((20, 20), (5, 10), (12, 18))
    with pytest.raises(ValueError, match="none of the 1 reference slumps has a pixel inside the valid extent"):
        evaluate(tile_of(np.zeros((20, 20)), quality), reference, [0.5], [0], quality_level=1, mask_erosion_size=0,
                 edge_erosion_size=0)


def test_empty_prediction():
    reference = square((30, 30), (5, 15), (5, 15))
    scores = only(evaluate(tile_of(np.zeros((30, 30))), reference, [0.5], [0], **NO_EROSION))
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"]) == (0, 0, 100)
    assert (scores["pixel_iou"], scores["pixel_f1"], scores["pixel_precision"], scores["pixel_recall"]) == (0, 0, 1, 0)
    assert (scores["object_tp"], scores["object_fp"], scores["object_fn"]) == (0, 0, 1)
    assert (scores["object_precision"], scores["object_recall"], scores["object_f1"], scores["found_share"]) == \
        (1, 0, 0, 0)


def test_empty_reference():
    probabilities = square((30, 30), (5, 15), (5, 15)) * 0.9
    evaluation = evaluate(tile_of(probabilities), np.zeros((30, 30), np.int32), [0.5], [0], **NO_EROSION)
    scores = only(evaluation)
    assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"]) == (0, 100, 0)
    assert (scores["pixel_iou"], scores["pixel_f1"], scores["pixel_precision"], scores["pixel_recall"]) == (0, 0, 0, 1)
    assert (scores["object_fp"], scores["object_precision"], scores["object_recall"], scores["object_f1"]) == \
        (1, 0, 1, 0)
    assert scores["found_share"] == 1.0
    assert evaluation.false_positives().sum() == 100 and evaluation.missed().size == 0


def test_both_empty_is_perfect():
    scores = only(evaluate(tile_of(np.zeros((10, 10))), np.zeros((10, 10), np.int32), [0.5], [0], **NO_EROSION))
    assert all(scores[name] == 1.0 for name in ("pixel_iou", "pixel_f1", "pixel_precision", "pixel_recall",
                                                "object_f1", "object_precision", "object_recall", "found_share"))


def test_greedy_matching_takes_the_highest_iou_first():
    # object 1 overlaps slumps 1 (0.6) and 2 (0.9); object 2 overlaps slump 2 (0.7): 1-2 first, then 2 is taken
    matched = greedy_matches(np.array([1, 1, 2]), np.array([1, 2, 2]), np.array([0.6, 0.9, 0.7]), 0.5)
    assert matched.tolist() == [1]


def smooth_random(shape, seed, passes=3):
    rng = np.random.default_rng(seed)
    values = rng.random(shape)
    for _ in range(passes):  # blobs, not salt and pepper
        values = (values + np.roll(values, 1, 0) + np.roll(values, 1, 1) + np.roll(values, -1, 0)
                  + np.roll(values, -1, 1)) / 5
    low, high = values.min(), values.max()
    return ((values - low) / (high - low)).astype(np.float32)


def random_reference(shape, seed, count=12):
    rng = np.random.default_rng(seed)
    ids = np.zeros(shape, np.int32)
    for index in range(1, count + 1):
        row, col = rng.integers(0, shape[0] - 12), rng.integers(0, shape[1] - 12)
        height, width = rng.integers(3, 12, size=2)
        ids[row:row + height, col:col + width] = index
    return ids


def reference_near(probabilities, level, seed):
    """Reference slumps: the objects above `level` (some found at lower thresholds, some cut by
    higher ones), every third left out, and random rectangles (mostly missed)."""
    from darts_postprocessing.core import label_objects

    labels, count = label_objects(probabilities > level)
    labels = np.where(labels % 3 == 0, 0, labels).astype(np.int32)
    extra = random_reference(probabilities.shape, seed, 6)
    return np.where((labels == 0) & (extra > 0), extra + count, labels).astype(np.int32)


@pytest.mark.parametrize("boundary, share", [("remove", 0.0), ("remove", 0.3), ("clip", 0.0)])
@pytest.mark.parametrize("connectivity", [8, 4])
def test_sweep_scores_each_setting_as_prepare_export_gives_it(boundary, share, connectivity):
    shape = (120, 140)
    probabilities = smooth_random(shape, 3)
    quality = np.where(smooth_random(shape, 4) > 0.25, 2, 0).astype(np.uint8)
    reference = reference_near(probabilities, 0.62, 5)
    water = smooth_random(shape, 6) > 0.8
    options = dict(mask_erosion_size=2, edge_erosion_size=1, quality_level=1, boundary=boundary,
                   size_connectivity=connectivity, exclude=water, max_excluded_share=share)
    thresholds, sizes = [0.55, 0.6, 0.7], [0, 6, 25]
    evaluation = evaluate(tile_of(probabilities, quality), reference, thresholds, sizes, **options)
    assert [(s.threshold, s.min_object_size) for s in evaluation.settings] == [(t, m) for t in thresholds for m in sizes]
    from darts_postprocessing.core import label_objects

    for setting in evaluation.settings:
        result = prepare_export(tile_of(probabilities, quality), bin_threshold=setting.threshold,
                                min_object_size=setting.min_object_size, **options)
        binary, valid = result["binarized_segmentation"], result["extent"] != 0
        truth = (reference > 0) & valid
        tp, fp, fn = (binary & truth).sum(), (binary & ~truth).sum(), (~binary & truth).sum()
        scores = setting.scores
        assert (scores["pixel_tp"], scores["pixel_fp"], scores["pixel_fn"], scores["pixel_tn"]) == \
            (tp, fp, fn, valid.sum() - tp - fp - fn)
        assert scores["predicted_objects"] == label_objects(binary)[1]
        touched = np.unique(reference[binary & valid])
        assert scores["found"] == np.count_nonzero(touched)
    assert any(s.scores["object_tp"] for s in evaluation.settings)  # the case has matches to check
    best = evaluation.best
    assert best.scores["object_f1"] == max(s.scores["object_f1"] for s in evaluation.settings)
    kept = prepare_export(tile_of(probabilities, quality), bin_threshold=best.threshold,
                          min_object_size=best.min_object_size, **options)["binarized_segmentation"]
    false_positives = evaluation.false_positives()
    assert not (false_positives & ~kept).any()
    assert label_objects(false_positives)[1] == best.scores["object_fp"]


def test_best_by_another_score_and_bad_arguments():
    shape = (60, 60)
    probabilities, reference = smooth_random(shape, 7), random_reference(shape, 8, 6)
    evaluation = evaluate(tile_of(probabilities), reference, [0.5, 0.6, 0.7], [0, 10], by="pixel_iou", **NO_EROSION)
    assert evaluation.best.scores["pixel_iou"] == max(s.scores["pixel_iou"] for s in evaluation.settings)
    with pytest.raises(ValueError, match="by must be one of"):
        evaluate(tile_of(probabilities), reference, [0.5], [0], by="accuracy", **NO_EROSION)
    with pytest.raises(ValueError, match="min_iou must be a number in"):
        evaluate(tile_of(probabilities), reference, [0.5], [0], min_iou=0, **NO_EROSION)
    with pytest.raises(ValueError, match="thresholds must differ"):
        evaluate(tile_of(probabilities), reference, [0.5, 0.5], [0], **NO_EROSION)
    with pytest.raises(ValueError, match="reference_ids have shape"):
        evaluate(tile_of(probabilities), reference[1:], [0.5], [0], **NO_EROSION)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pixel_scores_match_scikit_learn(seed):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference (venv only: "
                                                            "requirements-current.txt)")
    shape = (90, 110)
    rng = np.random.default_rng(seed)
    probabilities = smooth_random(shape, seed, passes=1)
    quality = rng.choice(np.array([0, 1, 2], np.uint8), size=shape, p=[0.2, 0.4, 0.4])
    reference = random_reference(shape, seed + 10, 25)
    options = dict(quality_level=1, mask_erosion_size=0, edge_erosion_size=0, boundary="clip")
    evaluation = evaluate(tile_of(probabilities, quality), reference, [0.3, 0.5, 0.6], [0, 3], **options)
    valid = quality >= 1
    for setting in evaluation.settings:
        binary = prepare_export(tile_of(probabilities, quality), bin_threshold=setting.threshold,
                                min_object_size=setting.min_object_size, **options)["binarized_segmentation"]
        truth, predicted = (reference > 0)[valid], binary[valid]
        scores = setting.scores
        assert scores["pixel_f1"] == pytest.approx(metrics.f1_score(truth, predicted, zero_division=1.0))
        assert scores["pixel_iou"] == pytest.approx(metrics.jaccard_score(truth, predicted, zero_division=1.0))
        assert scores["pixel_precision"] == pytest.approx(metrics.precision_score(truth, predicted, zero_division=1.0))
        assert scores["pixel_recall"] == pytest.approx(metrics.recall_score(truth, predicted, zero_division=1.0))


@pytest.mark.parametrize("truth, predicted", [([0, 0, 0], [0, 0, 0]), ([0, 1, 0], [0, 0, 0]), ([0, 0, 0], [1, 0, 0])])
def test_empty_pixel_scores_match_scikit_learn(truth, predicted):
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the reference (venv only: "
                                                            "requirements-current.txt)")
    truth, predicted = np.array(truth, bool), np.array(predicted, bool)
    scores = pixel_scores((truth & predicted).sum(), (~truth & predicted).sum(), (truth & ~predicted).sum(),
                          (~truth & ~predicted).sum())
    assert scores["pixel_f1"] == metrics.f1_score(truth, predicted, zero_division=1.0)
    assert scores["pixel_iou"] == metrics.jaccard_score(truth, predicted, zero_division=1.0)
    assert scores["pixel_precision"] == metrics.precision_score(truth, predicted, zero_division=1.0)
    assert scores["pixel_recall"] == metrics.recall_score(truth, predicted, zero_division=1.0)


# -- reference polygons from files ------------------------------------------------------------

UTM = "EPSG:32606"
GEOTRANSFORM = (500000.0, 10.0, 0.0, 7000000.0, 0.0, -10.0)


def write_reference(path, rectangles, crs=UTM):
    """A GeoPackage 'slumps' of rectangles (rows, cols) on the test grid, stored in `crs` (None: none)."""
    from osgeo import ogr, osr

    ogr.UseExceptions()

    def srs_of(code):
        srs = osr.SpatialReference()
        srs.SetFromUserInput(code)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        return srs

    transform = osr.CoordinateTransformation(srs_of(UTM), srs_of(crs)) if crs and crs != UTM else None
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = dataset.CreateLayer("slumps", srs_of(crs) if crs else None, ogr.wkbPolygon)
    for rows, cols in rectangles:
        x0, y0 = GEOTRANSFORM[0] + cols[0] * 10, GEOTRANSFORM[3] - rows[0] * 10
        x1, y1 = GEOTRANSFORM[0] + cols[1] * 10, GEOTRANSFORM[3] - rows[1] * 10
        geometry = ogr.CreateGeometryFromWkt(f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
        if transform:
            geometry.Transform(transform)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        layer.CreateFeature(feature)
    dataset = None
    return str(path)


def test_reference_polygons_in_another_crs_burn_one_id_each(tmp_path):
    pytest.importorskip("osgeo", reason="GDAL's Python bindings (Debian's python3-gdal) read the polygons")
    from darts_postprocessing.core.regions.evaluate import reference_raster

    source = write_reference(tmp_path / "reference.gpkg", [((2, 8), (3, 9)), ((10, 14), (10, 20))], crs="EPSG:4326")
    ids, polygons = reference_raster(source, (30, 30), GEOTRANSFORM, UTM)
    expected = square((30, 30), (2, 8), (3, 9), 1) + square((30, 30), (10, 14), (10, 20), 2)
    assert (ids == expected).all()
    fids = [feature.GetFID() for feature in polygons.GetLayerByName("polygons")]
    assert fids == [1, 2]


def test_reference_errors(tmp_path):
    pytest.importorskip("osgeo", reason="GDAL's Python bindings (Debian's python3-gdal) read the polygons")
    from darts_postprocessing.core.regions.evaluate import reference_raster

    no_crs = write_reference(tmp_path / "no_crs.gpkg", [((2, 8), (3, 9))], crs=None)
    with pytest.raises(ValueError, match="reference polygons have no CRS"):
        reference_raster(no_crs, (30, 30), GEOTRANSFORM, UTM)
    far = write_reference(tmp_path / "far.gpkg", [((200, 208), (3, 9))])
    with pytest.raises(ValueError, match="none of the 1 reference slumps lies on the probabilities raster"):
        reference_raster(far, (30, 30), GEOTRANSFORM, UTM)
    # in another CRS, far features are not even read (filtered by the grid's bounds): still an error
    far_elsewhere = write_reference(tmp_path / "far_4326.gpkg", [((20000, 20008), (3, 9))], crs="EPSG:4326")
    with pytest.raises(ValueError, match="none of the 1 reference slumps lies on the probabilities raster"):
        reference_raster(far_elsewhere, (30, 30), GEOTRANSFORM, UTM)
    empty = write_reference(tmp_path / "empty.gpkg", [])
    ids, _ = reference_raster(empty, (30, 30), GEOTRANSFORM, UTM)
    assert not ids.any()
