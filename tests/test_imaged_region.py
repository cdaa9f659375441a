"""SSIM over the imaged region: the scan, the aperture, the image circle, the body."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medfm_robust_plugin import corrupt
from medfm_robust_plugin.corruptions.ct import body_mask, slice_hu
from medfm_robust_plugin.corruptions.fundus import field_of_view
from medfm_robust_plugin.corruptions.ultrasound import detect_scan
from medfm_robust_plugin.data.reference_set import reference_images
from medfm_robust_plugin.engine import image_context
from medfm_robust_plugin.image import adapt_channels, split, to_physical, to_unit
from medfm_robust_plugin.imaged_region import MAX_SHARE, MIN_SHARE, imaged_region
from medfm_robust_plugin.ssim import REFERENCES, PresentedReference, ReferenceCache, presented_ssim


def _reference(name: str, modality: str):
    return next(r for r in reference_images(modality) if r.name == name)


def _context(image, modality):
    array, _, context, _ = image_context(image, modality=modality)
    return array, context


@pytest.mark.parametrize(
    "modality,kind",
    [("ultrasound", "scanned region"), ("ct", "body"), ("fundus", "camera aperture")],
)
def test_real_frames_have_their_imaged_region(modality, kind):
    for ref in reference_images(modality, real_only=True):
        array, context = _context(ref.image, modality)
        region = imaged_region(array, context)
        assert region is not None, ref.name
        assert region.kind == kind
        assert MIN_SHARE <= region.share <= MAX_SHARE
        body, _, layout = split(array, context.window)
        if modality == "ultrasound":
            gray, _ = adapt_channels(to_unit(body, layout), "gray")
            expected = detect_scan(np.ascontiguousarray(gray[..., 0])).region
        elif modality == "ct":
            gray, _ = adapt_channels(to_physical(body), "gray")
            expected = body_mask(slice_hu(gray, context))
        else:
            expected = field_of_view(to_unit(body, layout)) > 0.5
        assert np.array_equal(region.mask, expected), ref.name


def test_modalities_without_a_region_are_measured_over_the_frame():
    for modality in ("mri", "pathology", "dermoscopy", "oct"):
        ref = reference_images(modality, max_size=128)[0]
        array, context = _context(ref.image, modality)
        assert imaged_region(array, context) is None
        _, params = corrupt(ref.image, "gaussian_noise", 3, 0, True, modality=modality)
        assert "ssim_frame" not in params and "ssim_region" not in params
    # a bare array, whatever it shows
    _, params = corrupt(np.full((32, 32), 7, np.uint8), "gaussian_noise", 3, 0, True)
    assert "ssim_region" not in params


def test_a_record_holds_the_region_ssim_and_the_frame_ssim():
    ref = _reference("us_echo_frame60", "ultrasound")
    array, context = _context(ref.image, "ultrasound")
    region = imaged_region(array, context)
    out, params = corrupt(ref.image, "ultrasound_speckle", 4, 3, True, modality="ultrasound")
    assert params["ssim_region"] == {"kind": "scanned region", "share": round(region.share, 4)}
    assert params["ssim"] == pytest.approx(
        presented_ssim(out, array, context.window, region=region.mask), abs=1e-6
    )
    assert params["ssim_frame"] == pytest.approx(
        presented_ssim(out, array, context.window), abs=1e-6
    )
    # the banners and the black around the sector stay as they were and lift the frame's mean
    assert np.array_equal(out[~region.mask], array[~region.mask])
    assert params["ssim_frame"] > params["ssim"] + 0.1


def test_a_level_means_the_same_damage_however_much_surround_the_frame_has():
    """The retina photograph, and the same photograph with a wider black surround: shot noise
    (none where no light falls) scores alike over the aperture, where the whole-frame mean
    drifts up with the surround it cannot touch."""
    ref = _reference("fundus_retina", "fundus")
    clean = np.asarray(ref.array)
    wide = np.pad(clean, ((60, 60), (60, 60), (0, 0)))
    scores = {}
    for name, image in (("as taken", clean), ("wide", wide)):
        _, params = corrupt(image, "shot_noise", 1, 0, True, modality="fundus")
        assert params["ssim_region"]["kind"] == "camera aperture"
        scores[name] = params["ssim"], params["ssim_frame"]
    assert scores["wide"][0] == pytest.approx(scores["as taken"][0], abs=0.01)
    assert scores["wide"][1] > scores["as taken"][1] + 0.2


def test_ssim_mode_searches_on_the_region_ssim():
    ref = _reference("ct_abdomen", "ct")
    out, params = corrupt(ref.image, "ct_metal_streaks", 5, 0, True, mode="ssim", modality="ct")
    calibration = params["calibration"]
    assert calibration["in_band"] and calibration["reachable"]
    assert params["ssim"] == pytest.approx(calibration["ssim"], abs=1e-6)
    assert 0.5 <= params["ssim"] <= 0.59
    # the abdomen is 30% of the frame: over the whole frame the same image reads far milder
    assert params["ssim_frame"] > 0.75


def test_a_region_that_no_ssim_window_is_centred_in_is_the_whole_frame():
    """A small CT crop whose patient lies in the border rows that SSIM leaves out is measured
    over the frame (no error), as a frame without a region."""
    hu = np.full((12, 40), -1000, np.int16)
    hu[:2, 5:35] = 40  # soft tissue in the top two rows only
    array, context = _context(hu, "ct")
    assert imaged_region(array, context).share == pytest.approx(60 / 480)  # found, but ...
    assert PresentedReference.of(array, context).region is None  # ... no window is centred in it
    _, params = corrupt(hu, "gaussian_noise", 3, 0, True, modality="ct", units="HU")
    assert params["ssim"] is not None and "ssim_region" not in params


INFRARED_PLUGIN = """
    import numpy as np
    from medfm_robust_plugin import hookimpl
    from medfm_robust_plugin.imaged_region import RegionFinder

    def warm(body, context):
        return body[..., 0] > 0  # the lit part of a thermogram; the black mount is not imaged

    @hookimpl
    def register_imaged_regions(register):
        register(RegionFinder("thermography", "warm region", warm))
        register(RegionFinder("ct", "something else", warm))  # ct is taken: the built-in stays
"""


def test_a_plugin_gives_its_modality_an_imaged_region(tmp_path, monkeypatch):
    from medfm_robust_plugin.plugins import get_registry

    from .plugin_helpers import add_entry_point_plugin

    monkeypatch.syspath_prepend(str(tmp_path))
    add_entry_point_plugin(tmp_path, "infrared", "lab_infrared_plugin", INFRARED_PLUGIN)
    registry = get_registry()
    assert registry.registered_by("infrared")["regions"] == ["thermography"]
    (duplicate,) = [f for f in registry.failures if f.plugin == "infrared"]
    assert "imaged region 'ct'" in duplicate.error
    frame = np.zeros((64, 64), np.uint8)
    frame[8:56, 16:48] = np.random.default_rng(0).integers(60, 200, (48, 32))
    _, params = corrupt(frame, "gaussian_noise", 3, 0, True, modality="thermography")
    assert params["ssim_region"] == {"kind": "warm region", "share": 0.375}
    assert params["ssim"] > params["ssim_frame"] + 0.1  # the noisy black mount does not count
    ct = _reference("ct_small", "ct")
    _, params = corrupt(ct.image, "gaussian_noise", 3, 0, True, modality="ct")
    assert params["ssim_region"]["kind"] == "body"


def test_a_region_of_the_wrong_shape_names_the_modality(monkeypatch):
    from medfm_robust_plugin.errors import PluginError
    from medfm_robust_plugin.imaged_region import RegionFinder

    broken = RegionFinder("ct", "body", lambda body, context: np.ones((3, 3), bool))
    monkeypatch.setattr("medfm_robust_plugin.imaged_region.region_finder", lambda m: broken)
    ct = _reference("ct_small", "ct")
    with pytest.raises(PluginError, match=r"modality 'ct' \(body\) came back with shape \(3, 3\)"):
        corrupt(ct.image, "gaussian_noise", 3, 0, True, modality="ct")


def test_the_clean_side_of_ssim_is_kept_per_image_content_and_context():
    """A sample is measured at every level of every corruption: its region and window sums are
    found once. The key is the content, so a copy hits and an image changed in place does not."""
    ref = _reference("us_echo_frame60", "ultrasound")
    array, context = _context(ref.image, "ultrasound")
    first = PresentedReference.of(array, context)
    assert PresentedReference.of(array.copy(), context) is first
    assert len(REFERENCES) == 1
    bare = dataclasses.replace(context, modality=None)
    assert PresentedReference.of(array, bare) is not first  # another context: whole frame
    assert PresentedReference.of(array, bare).region is None
    assert first.region is not None
    changed = array.copy()
    changed.flat[0] ^= 1  # one pixel's lowest bit
    assert PresentedReference.of(changed, context) is not first
    array.flat[0] ^= 1  # the caller's array changed in place: what was kept is not
    assert first.clean.flat[0] != array.flat[0] and not first.clean.flags.writeable
    array.flat[0] ^= 1
    # what is kept gives what a fresh reference gives
    out, params = corrupt(ref.image, "ultrasound_speckle", 3, 1, True, modality="ultrasound")
    REFERENCES.clear()
    fresh = PresentedReference.of(array, context).scores(out)
    assert (params["ssim"], params["ssim_frame"]) == pytest.approx(fresh, abs=1e-6)


def test_the_reference_cache_keeps_to_its_budget():
    ref = _reference("us_echo_frame60", "ultrasound")
    array, context = _context(ref.image, "ultrasound")
    one = PresentedReference.of(array, context)
    cache = ReferenceCache(budget=2 * one.nbytes + 1)
    for key in "abc":
        cache.put(key, PresentedReference.of(array, context))
    assert list(cache.entries) == ["b", "c"]  # the least recently used went first
    assert cache.get("b") is not None
    cache.put("d", one)
    assert list(cache.entries) == ["b", "d"]
    small = ReferenceCache(budget=one.nbytes - 1)
    small.put("a", one)
    assert len(small) == 0  # larger than the budget: not kept


@pytest.mark.parametrize(
    "value,budget", [(None, 384 * 2**20), ("0", 0), ("1.5", 3 * 2**19), ("abc", None), ("-1", None)]
)
def test_the_reference_budget_comes_from_the_environment(monkeypatch, value, budget):
    from medfm_robust_plugin.errors import PluginError
    from medfm_robust_plugin.ssim import reference_budget

    if value is None:
        monkeypatch.delenv("MEDFM_ROBUST_SSIM_REFERENCES_MB", raising=False)
    else:
        monkeypatch.setenv("MEDFM_ROBUST_SSIM_REFERENCES_MB", value)
    if budget is None:
        with pytest.raises(PluginError, match=f"megabytes >= 0, got '{value}'"):
            reference_budget()
        return
    assert reference_budget() == budget
    if budget == 0:  # nothing is kept
        ref = _reference("us_echo_frame60", "ultrasound")
        array, context = _context(ref.image, "ultrasound")
        cache = ReferenceCache(budget)
        cache.put("a", PresentedReference.of(array, context))
        assert len(cache) == 0
