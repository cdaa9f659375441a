"""H&E tile corruptions: stain physics in optical density, and the slide artefacts HistoQC flags."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
import skimage.color
import skimage.io

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions import pathology
from medfm_robust_plugin.corruptions.pathology import (
    DAB,
    EOSIN,
    HEMATOXYLIN,
    optical_density,
    stain_matrix,
    transmission,
)
from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.suites import load_suite_file

NAMES = [c.name for c in pathology.CORRUPTIONS]
UNIT = (0.0, 1.0)
INK_HUES = {"blue": (190, 240), "green": (80, 170)}  # degrees; H&E spans about 260-305


def tile(seed: int = 0, size: int = 128):
    """An H&E phantom tile (uint8 RGB) and its nuclei mask."""
    p = phantom("pathology", size, seed)
    return p.image, p.mask


def hue_degrees(rgb: np.ndarray) -> np.ndarray:
    """Hue in degrees (0-360) of uint8 RGB pixels (N x 3)."""
    hsv = cv2.cvtColor(rgb.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
    return hsv[:, 0, 0].astype(np.float32) * 360 / 256


def circular_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def mean_hue(rgb: np.ndarray) -> float:
    angles = np.deg2rad(hue_degrees(rgb))
    return float(np.rad2deg(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())) % 360)


def test_beer_lambert_round_trip():
    values = np.linspace(1 / 255, 1.0, 256, dtype=np.float32).reshape(16, 16, 1).repeat(3, axis=2)
    np.testing.assert_allclose(transmission(optical_density(values)), values, atol=1e-5)
    assert optical_density(np.ones((2, 2, 3), np.float32)).max() == 0.0, "glass has zero density"


def test_the_phantom_unmixes_into_haematoxylin_and_eosin():
    image, nuclei = tile()
    density = optical_density(image.astype(np.float32) / 255)
    amounts = density @ np.linalg.inv(stain_matrix(HEMATOXYLIN, EOSIN))
    h, e = amounts[..., 0], amounts[..., 1]
    assert h[nuclei].mean() > 3 * h[~nuclei].mean(), "nuclei hold the haematoxylin"
    assert e[~nuclei].mean() > h[~nuclei].mean(), "stroma is eosin-pink"


def test_stain_variation_keeps_glass_white_and_shifts_the_nuclei_hue():
    image, nuclei = tile()
    glass = cv2.erode((image >= 253).all(axis=2).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert glass.sum() > 50
    shifts = []
    for seed in range(4):
        out = corrupt(image, "pathology_stain_variation", severity=3, seed=seed)
        assert (out[glass] >= 250).all(), "bare glass takes up no stain"
        shifts.append(circular_distance(mean_hue(out[nuclei]), mean_hue(image[nuclei])))
    assert max(shifts) > 10, shifts
    assert np.mean(shifts) > 4, shifts


def test_stain_variation_at_zero_strength_is_the_identity():
    image, _ = tile(1)
    out = corrupt(image, "pathology_stain_variation", strength=0.0, seed=0)
    assert np.abs(out.astype(int) - image).max() <= 1


def test_stain_variation_records_its_draws():
    image, _ = tile()
    _, params = corrupt(image, "pathology_stain_variation", 2, seed=5, return_params=True)
    assert len(params["draws"]["stain_scale"]) == 2 and len(params["draws"]["stain_shift"]) == 2


def test_air_bubbles_have_dark_rims_and_pale_insides():
    image, _ = tile()
    out = corrupt(image, "pathology_bubbles", severity=2, seed=0)
    luma_in, luma_out = image.mean(axis=2), out.mean(axis=2)
    rims = luma_out < 90
    assert rims.sum() > 30 and (luma_in[rims] > 90).mean() > 0.5, "new dark rims"
    paler = luma_out > luma_in + 10
    assert paler.mean() > 0.03, "tissue inside the bubble is washed out"


def test_a_tissue_fold_is_a_darker_band_and_never_lighter():
    image, _ = tile()
    out = corrupt(image, "pathology_tissue_fold", severity=3, seed=0)
    assert np.all(out.astype(int) <= image.astype(int) + 1), "an extra layer only absorbs"
    darker = (image.astype(int) - out).max(axis=2) > 15
    assert 0.1 < darker.mean() < 0.8
    # The band crosses the tile: it touches two opposite sides.
    ys, xs = np.nonzero(darker)
    spans = (ys.max() - ys.min(), xs.max() - xs.min())
    assert max(spans) >= image.shape[0] - 3


def test_pen_marks_add_a_colour_the_stain_never_has():
    image, _ = tile()
    before_hues = hue_degrees(image.reshape(-1, 3))
    seen_inks = set()
    for seed in range(16):
        out, params = corrupt(image, "pathology_pen_marks", 4, seed=seed, return_params=True)
        ink = params["draws"]["ink"]
        seen_inks.add(ink)
        inked = (np.abs(out.astype(int) - image).max(axis=2) > 30).reshape(-1)
        assert inked.mean() > 0.1
        if ink == "black":
            assert out.reshape(-1, 3)[inked].mean() < 0.5 * image.reshape(-1, 3)[inked].mean()
            continue
        low, high = INK_HUES[ink]
        after_hues = hue_degrees(out.reshape(-1, 3))[inked]
        assert ((before_hues >= low) & (before_hues <= high)).mean() < 0.02, "H&E has no such hue"
        assert ((after_hues >= low) & (after_hues <= high)).mean() > 0.5, f"{ink} shows as {ink}"
    assert {"blue", "green"} <= seen_inks


def test_out_of_focus_blurs_only_part_of_the_tile():
    image, _ = tile()
    out = corrupt(image, "pathology_out_of_focus", severity=4, seed=0)
    same = (out == image).all(axis=2)
    assert 0.15 < same.mean() < 0.8, "part of the tile stays in focus, untouched"

    def detail(im):
        return np.abs(cv2.Laplacian(im.mean(axis=2).astype(np.float32), cv2.CV_32F))

    blurred = ~same
    assert detail(out)[blurred].mean() < 0.5 * detail(image)[blurred].mean()


def test_more_of_the_tile_is_out_of_focus_at_higher_severity():
    image, _ = tile(2)
    untouched = [
        float((corrupt(image, "pathology_out_of_focus", s, seed=1) == image).all(axis=2).mean())
        for s in (1, 3, 5)
    ]
    assert untouched[0] > untouched[1] > untouched[2] > 0.05, untouched


@pytest.mark.parametrize("name", NAMES)
def test_pathology_corruptions_keep_the_tile_size_for_odd_shapes(name):
    image, _ = tile(0, 96)
    crop = np.ascontiguousarray(image[:37, :90])
    out = corrupt(crop, name, severity=3, seed=0)
    assert out.shape == crop.shape and out.dtype == crop.dtype


def test_the_pathology_suite_lists_every_pathology_corruption():
    path = next(p for p in bundled_files("corruptions") if p.stem == "pathology")
    suite = load_suite_file(path)
    assert suite.modality == "pathology"
    assert set(suite.corruption_names("modality_specific")) == set(NAMES)
    assert suite.check() == []


# --------------------------------------------------------------------------- a real IHC tile

IHC_PNG = Path(skimage.__file__).parent / "data" / "ihc.png"


@pytest.fixture(scope="module")
def ihc() -> np.ndarray:
    """skimage's immunohistochemistry tile: haematoxylin counterstain and brown DAB (uint8 RGB)."""
    return np.ascontiguousarray(skimage.io.imread(IHC_PNG)[..., :3])


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference of two uint8 RGB images."""
    lab_a, lab_b = (skimage.color.rgb2lab(x) for x in (a, b))
    return float(skimage.color.deltaE_ciede2000(lab_a, lab_b).mean())


def test_the_stains_of_an_ihc_tile_are_haematoxylin_and_dab(ihc):
    stains = pathology.estimate_stains(optical_density(ihc.astype(np.float32) / 255))
    assert stains is not None
    references = [stain_matrix(HEMATOXYLIN, DAB)[i] for i in (0, 1)]
    for estimated, reference in zip(stains, references, strict=True):
        angle = np.rad2deg(np.arccos(np.clip(estimated @ reference, -1.0, 1.0)))
        assert angle < 15, (estimated, reference)


def test_stain_variation_keeps_dab_brown(ihc):
    hue = hue_degrees(ihc.reshape(-1, 3)).reshape(ihc.shape[:2])
    saturation = cv2.cvtColor(ihc, cv2.COLOR_RGB2HSV)[..., 1]
    dab = (hue < 50) & (saturation > 60) & (ihc.max(axis=2) < 200)
    assert dab.mean() > 0.1
    for seed in range(6):
        out = corrupt(ihc, "pathology_stain_variation", 5, seed=seed)
        after = hue_degrees(out[dab])
        green = (after > 70) & (after < 180)
        assert green.mean() < 0.01, f"seed {seed}: DAB turned green"
        assert circular_distance(mean_hue(out[dab]), mean_hue(ihc[dab])) < 20


@pytest.mark.parametrize("which", ["ihc", "h&e"])
def test_stain_variation_spans_hed_light_to_hed_strong(ihc, which):
    image = ihc if which == "ihc" else phantom("pathology", 192, 0).image
    shifts = [
        np.mean(
            [
                delta_e(image, corrupt(image, "pathology_stain_variation", s, seed=seed))
                for seed in range(3)
            ]
        )
        for s in (1, 3, 5)
    ]
    assert shifts[0] < shifts[1] < shifts[2], shifts
    assert 1.5 < shifts[0] < 7, "HED-light: a colour difference just noticeable"
    assert 10 < shifts[2] < 30, "HED-strong and a little beyond: clearly another lab's stain"


def test_too_little_tissue_falls_back_to_the_reference_stains():
    glass = np.full((64, 64, 3), 250, np.uint8)
    glass[30:34, 30:34] = (120, 60, 150)  # one small H&E-coloured speck
    assert pathology.estimate_stains(optical_density(glass.astype(np.float32) / 255)) is None
    out, params = corrupt(glass, "pathology_stain_variation", 3, seed=0, return_params=True)
    assert params["draws"]["stain_vectors"] == "H&E"
    assert out.shape == glass.shape and (out[:20] >= 249).all()
