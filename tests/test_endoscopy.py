"""Endoscopy artefacts (EAD classes) look and behave as the optics of a video endoscope say."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import endoscopy
from medfm_robust_plugin.corruptions.endoscopy import field_of_view, sweep_kernel
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.suites import load_suite_file

NAMES = [c.name for c in endoscopy.CORRUPTIONS]
UNIT = (0.0, 1.0)


def frame(seed: int = 0, size: int = 128) -> np.ndarray:
    """A colonoscopy-like frame (uint8 RGB) with its black frame outside the scope's circle."""
    return phantom("endoscopy", size, seed).image


def outside_view(image: np.ndarray) -> np.ndarray:
    return field_of_view(image.astype(np.float32) / 255) == 0.0


def well_inside_view(image: np.ndarray) -> np.ndarray:
    return field_of_view(image.astype(np.float32) / 255) > 0.99


@pytest.mark.parametrize("name", NAMES)
def test_the_black_frame_outside_the_scope_circle_stays_black(name):
    clean = frame()
    out = corrupt(clean, name, severity=5, seed=1)
    frame_mask = outside_view(clean)
    assert frame_mask.mean() > 0.1
    assert np.array_equal(out[frame_mask], clean[frame_mask]), f"{name} drew outside the optics"


def test_specular_highlights_are_saturated_white_and_only_add_light():
    clean = frame()
    out = corrupt(clean, "endoscopy_specular_reflection", severity=3, seed=2)
    changed = np.abs(out.astype(int) - clean).max(axis=2) > 10
    assert 0.01 < changed.mean() < 0.5
    assert np.all(out.astype(int) >= clean.astype(int) - 1), "a reflection only adds light"
    clipped = (out >= 250).all(axis=2) & changed
    assert clipped.sum() > 0.15 * changed.sum(), "highlight cores clip to white in every channel"
    chroma = lambda im: im.max(axis=-1).astype(int) - im.min(axis=-1)  # noqa: E731
    assert chroma(out[changed]).mean() < 0.6 * chroma(clean[changed]).mean(), "white, not tinted"


def test_a_stronger_setting_keeps_the_highlights_where_they_were():
    clean = frame()
    weak = corrupt(clean, "endoscopy_specular_reflection", strength=0.3, seed=4)
    strong = corrupt(clean, "endoscopy_specular_reflection", strength=0.7, seed=4)
    weak_spots = (weak >= 250).all(axis=2) & (clean < 250).any(axis=2)
    strong_spots = (strong >= 250).all(axis=2)
    assert weak_spots.any()
    assert np.mean(strong_spots[weak_spots]) > 0.99, "same seed, same highlights, only more"


def test_bubbles_have_bright_rims_and_grow_in_number_with_severity():
    clean = frame()
    brighter = []
    for severity in (1, 3, 5):
        out = corrupt(clean, "endoscopy_bubbles", severity=severity, seed=3)
        brighter.append(int(((out.astype(int) - clean).min(axis=2) > 40).sum()))
    assert 0 < brighter[0] < brighter[1] < brighter[2]


def test_blood_absorbs_green_and_blue_more_than_red():
    clean = frame().astype(np.float32) / 255
    out = corrupt(clean, "endoscopy_blood", severity=4, seed=0, value_range=UNIT)
    stained = (clean - out).max(axis=2) > 0.05
    assert 0.1 < stained.mean() < 0.8
    kept = out[stained] / np.maximum(clean[stained], 1e-3)
    red, green, blue = kept[:, 0].mean(), kept[:, 1].mean(), kept[:, 2].mean()
    assert red > green + 0.2 and red > blue + 0.2, (red, green, blue)
    assert np.all(out <= clean + 1e-6), "a film of blood only absorbs"


def test_over_exposure_clips_more_of_the_frame_as_the_gain_rises():
    clean = frame()
    clipped = [
        float(
            (corrupt(clean, "endoscopy_over_saturation", severity=s, seed=0) >= 254)
            .any(axis=2)
            .mean()
        )
        for s in (1, 3, 5)
    ]
    assert clipped[0] < clipped[1] < clipped[2]
    assert clipped[2] > 0.25


def test_lens_fog_lowers_contrast_and_lifts_the_dark_parts():
    clean = frame().astype(np.float32) / 255
    out = corrupt(clean, "endoscopy_lens_fog", severity=4, seed=0, value_range=UNIT)
    view = well_inside_view((clean * 255).astype(np.uint8))
    luma_clean, luma_out = clean[view].mean(axis=1), out[view].mean(axis=1)
    assert luma_out.std() < 0.6 * luma_clean.std()
    darkest = luma_clean < np.quantile(luma_clean, 0.1)
    assert luma_out[darkest].mean() > luma_clean[darkest].mean() + 0.05


def test_motion_smear_draws_a_point_into_a_line():
    clean = np.full((96, 96, 3), 0.3, np.float32)
    clean[48, 48] = 1.0
    out = corrupt(clean, "endoscopy_motion_smear", severity=4, seed=5, value_range=UNIT)
    spread = out[..., 0] - 0.3
    ys, xs = np.nonzero(spread > 0.005)
    assert len(ys) > 5
    eigen = np.linalg.eigvalsh(np.cov(np.stack([ys, xs]).astype(float)))
    assert eigen[1] > 20 * max(eigen[0], 1e-3), "a sweep along one direction, not a disc"


def test_sweep_kernel_is_normalised_and_as_long_as_asked():
    kernel = sweep_kernel(20.0, angle=0.0, decay=0.7)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    columns = np.nonzero(kernel.sum(axis=0) > 1e-6)[0]
    assert 19 <= columns.max() - columns.min() <= 22
    assert kernel.sum(axis=0)[columns.min()] > kernel.sum(axis=0)[columns.max()], "trail fades"


def test_the_endoscopy_suite_lists_every_endoscopy_corruption():
    from medfm_robust_plugin.resources import bundled_files

    path = next(p for p in bundled_files("corruptions") if p.stem == "endoscopy")
    suite = load_suite_file(path)
    assert suite.modality == "endoscopy"
    assert set(suite.corruption_names("modality_specific")) == set(NAMES)
    assert suite.check() == []
