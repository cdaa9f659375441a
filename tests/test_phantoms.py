"""The colour phantoms carry the fine structure of their modality, which SSIM-banded levels need.

A blur, pixelation or contrast change lowers SSIM only where the image has local contrast above
SSIM's C2; phantoms as smooth as a gradient stay above the paper's bands 3-5 at any strength, real
dermoscopy, endoscopy and fundus photographs do not.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medfm_robust_plugin.data import phantoms
from medfm_robust_plugin.ssim import image_ssim


def grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32).mean(axis=2)


def fine_detail(plane: np.ndarray) -> np.ndarray:
    """What a Gaussian blur of 1.5 pixels takes away from one plane (grey levels)."""
    return plane - cv2.GaussianBlur(plane, (0, 0), 1.5)


@pytest.mark.parametrize("modality", ["dermoscopy", "endoscopy", "fundus"])
def test_a_blur_of_three_pixels_leaves_the_paper_band_1(modality):
    for seed in (0, 1):
        image = phantoms.phantom(modality, 256, seed).image
        blurred = cv2.GaussianBlur(image, (0, 0), 3.0)
        assert image_ssim(blurred, image) < 0.85, (modality, seed)


def test_dermoscopy_has_a_pigment_network_in_the_lesion_and_furrows_on_the_skin():
    for seed in range(3):
        p = phantoms.dermoscopy(256, seed)
        inside = cv2.erode(p.mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        outside = ~cv2.dilate(p.mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        level = grey(p.image)
        detail = fine_detail(level)
        # Weber contrast: the network's lines are darker than its holes by more, relative to the
        # lesion's brightness, than the skin's furrows and mottle relative to the skin's
        lesion_contrast = detail[inside].std() / level[inside].mean()
        skin_contrast = detail[outside].std() / level[outside].mean()
        assert lesion_contrast > 0.04 and 0.01 < skin_contrast < 0.7 * lesion_contrast, seed
        assert grey(p.image)[inside].mean() < grey(p.image)[outside].mean() - 50, seed


def test_endoscopy_has_fine_vessels_that_absorb_green_more_than_red():
    field = np.hypot(*np.mgrid[-1:1:256j, -1:1:256j]) < 0.9
    for seed in range(3):
        image = phantoms.endoscopy(256, seed).image.astype(np.float32)
        red, green = image[..., 0], image[..., 1]
        detail_red, detail_green = fine_detail(red), fine_detail(green)
        relative_green = detail_green[field].std() / green[field].mean()
        relative_red = detail_red[field].std() / red[field].mean()
        assert relative_green > 0.04 and relative_green > 2 * relative_red, seed


def test_fundus_vessels_branch_from_the_disc_and_thin_out_and_the_macula_is_darker():
    for seed in range(3):
        p = phantoms.fundus(256, seed)
        image = p.image.astype(np.float32)
        retina = image[..., 0] > 20
        background = cv2.medianBlur(p.image, 15).astype(np.float32)
        # vessels: darker than the retina around them, mostly in green
        vessels = retina & ~p.mask & (background[..., 1] - image[..., 1] > 8)
        share = vessels[retina].mean()
        assert 0.03 < share < 0.2, (seed, share)
        # most vessel pixels belong to trees that leave the disc
        near_disc = cv2.dilate(p.mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        _, labels = cv2.connectedComponents(vessels.astype(np.uint8))
        trees = np.isin(labels, list(set(np.unique(labels[near_disc & vessels])) - {0}))
        assert trees.sum() > 0.8 * vessels.sum(), seed
        widths = cv2.distanceTransform(vessels.astype(np.uint8), cv2.DIST_L2, 3)[vessels]
        assert widths.max() >= 2.0 and np.median(widths) <= 1.5, seed
        # the macula sits temporal to the disc, darker than the retina between them
        disc_x = np.nonzero(p.mask)[1].mean() / 256 * 2 - 1
        macula_x = disc_x - np.sign(disc_x) * 0.78
        column = int((macula_x + 1) / 2 * 256)
        row = int((np.nonzero(p.mask)[0].mean() / 256 * 2 - 1 + 0.05 + 1) / 2 * 256)
        halfway = int((column + np.nonzero(p.mask)[1].mean()) / 2)
        assert (
            image[row - 3 : row + 4, column - 3 : column + 4].mean()
            < background[row, halfway].mean()
        ), seed
