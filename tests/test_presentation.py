"""The presented image: what a model sees decides where natural corruptions act and where SSIM is
measured. Checked on a real head CT in HU (pydicom's bundled J2K_pixelrep_mismatch.dcm) and a real
MR slice (nibabel's bundled 0.dcm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.engine import image_context
from medfm_robust_plugin.image import load_image
from medfm_robust_plugin.presentation import Presentation, ct_window, presentation_for
from medfm_robust_plugin.ssim import presented_ssim, ssim
from medfm_robust_plugin.tasks import Condition
from medfm_robust_plugin.views import CorruptedViews


@pytest.fixture(scope="module")
def head_ct():
    import pydicom

    return load_image(Path(pydicom.__file__).parent / "data/test_files/J2K_pixelrep_mismatch.dcm")


@pytest.fixture(scope="module")
def head_mr():
    import nibabel

    return load_image(Path(nibabel.__file__).parent / "tests/data/0.dcm")


def test_rules_in_order(head_ct, head_mr):
    hu = head_ct.array
    assert presentation_for(np.zeros((8, 8), np.uint8)).window == (0.0, 255.0)
    assert presentation_for(hu, "ct").window == ct_window("soft_tissue") == (-160.0, 240.0)
    assert presentation_for(hu, "ct", head_ct.meta).rule == "DICOM window"
    assert presentation_for(hu, "ct", head_ct.meta, window="bone").window == (-500.0, 1300.0)
    lo, hi = presentation_for(head_mr.array, "mri").window
    assert lo == pytest.approx(np.percentile(head_mr.array, 0.5))
    assert hi == pytest.approx(np.percentile(head_mr.array, 99.5)) and hi < head_mr.array.max()
    # a bare non-8-bit array without a modality keeps the engine's value-range rule
    assert presentation_for(hu).window == (float(hu.min()), float(hu.max()))
    with pytest.raises(Exception, match="unknown CT window"):
        presentation_for(hu, "ct", window="kidney-ish")


def test_a_dicom_brings_modality_units_spacing_and_window(head_ct):
    _, _, context, presentation = image_context(head_ct)
    assert context.modality == "ct" and context.units == "HU"
    assert context.pixel_spacing == (0.431, 0.431)
    assert presentation.window == (-10.0, 90.0)  # the file's own WindowCenter 40 / Width 100


def test_noise_on_ct_is_a_fraction_of_the_window_not_of_the_hu_range(head_ct):
    hu = head_ct.array.astype(np.float64)
    tissue = (hu > 0) & (hu < 80)
    raw = corrupt(head_ct.array, "gaussian_noise", 1, seed=1)  # bare array: whole value range
    shown = corrupt(head_ct.array, "gaussian_noise", 1, seed=1, modality="ct")  # soft tissue
    added_raw = (raw.astype(np.float64) - hu)[tissue].std()
    added_shown = (shown.astype(np.float64) - hu)[tissue].std()
    assert added_raw > 200  # 0.08 of a 3,896 HU range
    assert 20 < added_shown < 40  # 0.08 of the 400 HU soft-tissue window


def test_pixels_the_corruption_leaves_alone_keep_their_hu(head_ct):
    hu = head_ct.array
    out = corrupt(hu, "gaussian_blur", 1, seed=0, modality="ct")
    deep_bone = hu > 1000  # white in the soft-tissue window, and white after the blur far inside
    kept = out[deep_bone] == hu[deep_bone]
    assert kept.mean() > 0.5  # bone is not flattened to the window's top (240 HU)
    assert out.max() > 1000


def test_ssim_is_measured_on_the_presented_image(head_ct):
    window = ct_window("soft_tissue")
    out, params = corrupt(head_ct, "contrast", 1, seed=0, window="soft_tissue", return_params=True)
    shown = Presentation(window, "test")
    frame = ssim(shown.to_unit(out), shown.to_unit(head_ct.array), data_range=1.0)
    assert params["ssim_frame"] == pytest.approx(frame, abs=1e-6)
    # averaged over the patient: every pixel above -500 HU or enclosed by it (not the air)
    body = ndimage.binary_fill_holes(head_ct.array > -500)
    assert params["ssim_region"] == {"kind": "body", "share": round(float(body.mean()), 4)}
    in_body = ssim(shown.to_unit(out), shown.to_unit(head_ct.array), data_range=1.0, region=body)
    assert params["ssim"] == pytest.approx(in_body, abs=1e-6)
    given = presented_ssim(out, head_ct.array, window, region=body)
    assert params["ssim"] == pytest.approx(given, abs=1e-6)
    # the air that a contrast change greys out in this window is not what the level measures
    assert params["ssim"] > frame + 0.2
    assert params["value_range"] == list(window)


def test_views_present_ct_through_the_files_window_and_pass_spacing(head_ct, tmp_path):
    import shutil

    path = tmp_path / "head.dcm"
    shutil.copy(head_ct.source, path)
    sample = Sample(id="head", dataset="real", modality="ct", image=str(path))
    views = CorruptedViews(global_seed=0)
    assert views.window(sample) == (-10.0, 90.0)
    view = views.get(sample, Condition("gaussian_noise", 2))
    assert view.params["pixel_spacing"] == [0.431, 0.431]
    shown = views.display(view)
    expected = Presentation((-10.0, 90.0), "t").to_uint8(view.image)
    np.testing.assert_array_equal(shown[..., 0], expected)
    assert shown.shape == (*head_ct.array.shape, 3)
    # a sample's own window (a loader's or a task's) wins over the file's
    windowed = Sample(
        id="head",
        dataset="real",
        modality="ct",
        image=str(path),
        meta={"display_window": "soft_tissue"},
    )
    assert CorruptedViews(global_seed=0).window(windowed) == (-160.0, 240.0)


def test_a_bad_window_or_spacing_is_one_clear_error(head_ct):
    with pytest.raises(Exception, match="display window"):
        corrupt(head_ct.array, "gaussian_noise", 1, window=(100, 100))
    with pytest.raises(Exception, match="pixel_spacing"):
        corrupt(head_ct.array, "gaussian_noise", 1, pixel_spacing=(0, 0.5))


def test_a_task_card_sets_the_window_of_a_modality():
    from medfm_robust_plugin.tasks import TaskError, get_task, parse_card

    card = get_task("MedFMRobust-Mini-VQA")
    data = {
        "task": "Lung-VQA",
        "kind": "vqa",
        "dataset": {"name": "medfm_robust_mini", "options": {"task": "vqa"}},
        "metrics": ["accuracy"],
        "needs_data_root": False,
        "windows": {"ct": "lung", "mri": [0, 500]},
    }
    lung = parse_card(dict(data))[0]
    assert lung.windows == {"ct": "lung", "mri": [0.0, 500.0]}
    samples = lung.load().samples
    ct = [s for s in samples if s.modality == "ct"]
    assert ct and all(s.meta["display_window"] == "lung" for s in ct)
    assert CorruptedViews().window(ct[0]) == ct_window("lung")
    assert card.windows == {}
    with pytest.raises(TaskError, match="window of 'ct'"):
        parse_card({**data, "windows": {"ct": "kidney-ish"}})
