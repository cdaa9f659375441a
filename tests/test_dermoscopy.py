"""Dermoscopy artefacts: hair, glare, dark corners, gel bubbles and rulers, as seen in ISIC and PH2."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import dermoscopy
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.suites import load_suite_file

NAMES = [c.name for c in dermoscopy.CORRUPTIONS]
UNIT = (0.0, 1.0)


def skin(seed: int = 0, size: int = 128) -> np.ndarray:
    """A dermoscopic image of a pigmented lesion on skin (uint8 RGB)."""
    return phantom("dermoscopy", size, seed).image


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def test_hair_strands_are_darker_than_the_skin_under_them():
    clean = skin()
    out = corrupt(clean, "dermoscopy_hair", severity=3, seed=0)
    changed = np.abs(out.astype(int) - clean).max(axis=2) > 8
    assert 0.02 < changed.mean() < 0.5
    assert np.all(luma(out)[changed] < luma(clean)[changed]), "hair only darkens"
    strands = changed & (luma(out) < 0.5 * luma(clean))
    assert strands.sum() > 0.3 * changed.sum(), "most hair pixels are much darker than skin"


def test_more_hair_at_higher_severity_and_the_first_hairs_stay_put():
    clean = skin()
    hair_masks = [
        luma(corrupt(clean, "dermoscopy_hair", severity=s, seed=2)) < luma(clean) - 20
        for s in (1, 3, 5)
    ]
    counts = [int(m.sum()) for m in hair_masks]
    assert counts[0] < counts[1] < counts[2]
    assert hair_masks[0][hair_masks[2]].sum() >= 0.95 * hair_masks[0].sum()


def test_light_reflection_adds_near_white_glare():
    clean = skin()
    out = corrupt(clean, "dermoscopy_light_reflection", severity=3, seed=1)
    white_before = (clean >= 240).all(axis=2).mean()
    white_after = (out >= 240).all(axis=2).mean()
    assert white_before < 0.001 and white_after > 0.03
    assert np.all(out.astype(int) >= clean.astype(int) - 1), "glare only adds light"


def test_dark_corners_darken_the_corners_more_than_the_centre():
    clean = np.full((120, 160, 3), 0.7, np.float32)
    out = corrupt(clean, "dermoscopy_dark_corners", severity=3, seed=0, value_range=UNIT)
    corners = np.stack([out[:8, :8], out[:8, -8:], out[-8:, :8], out[-8:, -8:]])
    centre = out[50:70, 70:90]
    assert corners.max() < 0.1, "the scope's tube blacks out the corners"
    assert centre.min() > 0.6, "the centre of the field stays lit"
    untouched = corrupt(clean, "dermoscopy_dark_corners", strength=0.0, seed=0, value_range=UNIT)
    np.testing.assert_allclose(untouched, clean, atol=1e-6)


def test_dark_corners_grow_with_severity():
    clean = np.full((96, 96, 3), 0.7, np.float32)
    dark = [
        float((corrupt(clean, "dermoscopy_dark_corners", s, seed=4, value_range=UNIT) < 0.2).mean())
        for s in (1, 2, 3, 4, 5)
    ]
    assert all(b > a for a, b in zip(dark, dark[1:])), dark


def test_gel_bubbles_have_dark_rims_and_bright_reflections():
    clean = skin()
    out = corrupt(clean, "dermoscopy_gel_bubbles", severity=3, seed=0)
    delta = luma(out) - luma(clean)
    assert (delta < -60).sum() > 30, "dark refracting rims"
    assert (delta > 40).sum() > 5, "specular reflections on the bubble caps"


def test_ruler_marks_are_dark_ticks_along_one_edge():
    clean = skin()
    for seed in range(4):
        out = corrupt(clean, "dermoscopy_ruler_marks", severity=3, seed=seed)
        ink = (luma(out) < 40) & (luma(clean) > 80)
        assert ink.sum() > 50
        ys, xs = np.nonzero(ink)
        h, w = ink.shape
        reach = 0.3 * min(h, w) + 0.1 * max(h, w) + 2  # strip depth plus the ruler's tilt
        nearest_edge = min(ys.max(), xs.max(), h - 1 - ys.min(), w - 1 - xs.min())
        assert nearest_edge < reach, "the ruler enters from an edge"
        assert min(ys.max() - ys.min(), xs.max() - xs.min()) < reach


def test_the_ruler_reaches_further_in_at_higher_severity():
    clean = np.full((100, 140, 3), 0.5, np.float32)
    covered = [
        float(
            (
                np.abs(corrupt(clean, "dermoscopy_ruler_marks", s, seed=3, value_range=UNIT) - 0.5)
                > 0.02
            )
            .any(axis=2)
            .mean()
        )
        for s in (1, 2, 3, 4, 5)
    ]
    assert all(b > a for a, b in zip(covered, covered[1:])), covered
    assert covered[0] < 0.15 and covered[4] > 0.4, covered


@pytest.mark.parametrize("name", NAMES)
def test_grey_dermoscopy_images_come_back_grey(name):
    clean = luma(skin(1, 64)).astype(np.uint8)
    out = corrupt(clean, name, severity=3, seed=0)
    assert out.shape == clean.shape and out.dtype == np.uint8


def test_the_dermoscopy_suite_lists_every_dermoscopy_corruption():
    path = next(p for p in bundled_files("corruptions") if p.stem == "dermoscopy")
    suite = load_suite_file(path)
    assert suite.modality == "dermoscopy"
    assert set(suite.corruption_names("modality_specific")) == set(NAMES)
    assert suite.check() == []
