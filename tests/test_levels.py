"""Severity levels on the reference set: the suites' tables put each level's median presented SSIM
in the paper's band wherever the corruption can reach it, and SSIM mode never leaves a level
silently out of band."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin.calibration import PAPER_BANDS
from medfm_robust_plugin.data.reference_set import reference_images, reference_modalities
from medfm_robust_plugin.engine import corrupt
from medfm_robust_plugin.levels import (
    LEVELS,
    _fill_unreachable,
    in_band,
    level_seed,
    medical_corruptions,
    param_at,
    presented_ssim,
    table_medians,
)
from medfm_robust_plugin.suites import suite_for_modality


def test_tuned_tables_land_in_band_where_reachable():
    """>= 90% of the reachable (corruption, level) of every modality's own corruptions.

    A level is unreachable when even full strength (the end of ``param_range``) leaves the median
    above the band; benchmarks/tune_levels.py lists those and validity.py counts them.
    """
    hits = reachable = total = 0
    misses = []
    for modality in reference_modalities():
        references = reference_images(modality)
        for spec in medical_corruptions(modality):
            medians = table_medians(spec, references)
            for k, median in zip(LEVELS, medians):
                total += 1
                full = np.median(
                    [presented_ssim(r, spec, strength=1.0, seed_level=k) for r in references]
                )
                if full > PAPER_BANDS[k][1]:
                    continue
                reachable += 1
                hits += in_band(median, k)
                if not in_band(median, k):
                    misses.append(f"{spec.name} L{k}: {median:.3f}")
    assert reachable >= 0.7 * total
    assert hits >= 0.9 * reachable, misses


def test_ssim_mode_is_in_band_or_recorded_unreachable():
    hits = reachable = 0
    for modality in ("ct", "mri", "xray"):
        references = reference_images(modality, max_size=160)[:1]
        suite = suite_for_modality(modality)
        for spec in suite.corruptions()[:4] + medical_corruptions(modality)[:3]:
            for reference in references:
                for k in LEVELS:
                    seed = level_seed(reference.name, spec.name, k)
                    _, params = corrupt(
                        reference.image, spec, k, seed, True, modality=modality, mode="ssim"
                    )
                    record = params["calibration"]
                    assert params["ssim"] == record["ssim"]
                    assert record["in_band"] or not record["reachable"] or record["note"]
                    if record["reachable"]:
                        reachable += 1
                        hits += record["in_band"]
                    else:
                        assert "band not reached" in record["note"]
    assert hits >= 0.95 * reachable


def test_unreachable_levels_rise_to_full_strength():
    filled = _fill_unreachable([0.1, 0.3, float("nan"), float("nan")])
    assert filled == pytest.approx([0.1, 0.3, 0.65, 1.0])


def test_a_level_out_of_reach_between_reachable_ones_keeps_the_later_levels():
    """Each level has its own seeds: level 3 may reach its band where level 2 does not."""
    nan = float("nan")
    filled = _fill_unreachable([0.2, nan, 0.6, nan, nan])
    assert filled == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_parameters_are_rounded_as_in_a_table():
    spec = next(c for c in medical_corruptions("dermoscopy") if c.name == "dermoscopy_hair")
    assert isinstance(param_at(spec, 0.37), int)  # a hair count stays whole
    spec = medical_corruptions("ct")[0]
    value = param_at(spec, 0.333333)
    assert value == float(f"{value:.3g}")


def test_a_level_whose_band_middle_is_out_of_reach_takes_the_band_upper_part(monkeypatch):
    """Full strength gives SSIM 0.56: inside band 5 (0.50-0.59) though above its middle (0.545).

    The level is reachable, at the strength measured in the band nearest its middle.
    """
    import dataclasses
    from types import SimpleNamespace

    from medfm_robust_plugin import levels

    spec = dataclasses.replace(
        medical_corruptions("ct")[0],
        severity_params=(0.1, 0.2, 0.3, 0.4, 0.5),
        param_range=(0.0, 1.0),
    )

    def fake_ssim(reference, spec, *, level=None, strength=None, seed_level=None):
        param = spec.param_for(strength=strength) if strength is not None else spec.param_for(level)
        return 1.0 - 0.44 * float(param)

    monkeypatch.setattr(levels, "presented_ssim", fake_ssim)
    reference = SimpleNamespace(name="line", modality="ct", image=None)
    tuned = levels.tune_levels(spec, [reference])
    assert tuned.reachable == [True] * 5
    assert tuned.in_band == [True] * 5
    assert tuned.strengths[-1] == pytest.approx(1.0, abs=0.03)  # near full strength


def test_a_band_stepped_over_by_a_whole_number_is_reported_and_the_nearest_kept(monkeypatch):
    """A count of 2 gives SSIM 0.895 (above band 2), 3 gives 0.75 (below it): level 2 is out of
    reach, keeps the nearer count, and the table is measured at the counts it will hold."""
    import dataclasses
    from types import SimpleNamespace

    from medfm_robust_plugin import levels

    spec = dataclasses.replace(
        medical_corruptions("ct")[0], severity_params=(1, 2, 3, 4, 5), param_range=(0, 10)
    )
    ssim_of_count = [1.0, 0.94, 0.895, 0.75, 0.65, 0.55, 0.45, 0.4, 0.35, 0.3, 0.25]

    def fake_ssim(reference, spec, *, level=None, strength=None, seed_level=None):
        param = spec.param_for(strength=strength) if strength is not None else spec.param_for(level)
        assert param == int(param)  # only whole counts are ever measured
        return ssim_of_count[int(param)]

    monkeypatch.setattr(levels, "presented_ssim", fake_ssim)
    tuned = levels.tune_levels(spec, [SimpleNamespace(name="count", modality="ct", image=None)])
    assert tuned.severity_params == [1, 2, 3, 4, 5]
    assert tuned.reachable == [True, False, True, True, True]
    assert tuned.in_band == [True, False, True, True, True]


def test_a_level_whose_seeds_are_past_its_band_at_the_previous_strength_moves_it_down(monkeypatch):
    """Level 5's draws fall faster than level 4's: at level 4's strength nearest its band's middle
    level 5 is already below band 5. Level 4 then takes the weakest strength measured in its
    band, which leaves room for level 5."""
    import dataclasses
    from types import SimpleNamespace

    from medfm_robust_plugin import levels

    spec = dataclasses.replace(
        medical_corruptions("ct")[0],
        severity_params=(0.1, 0.2, 0.3, 0.4, 0.5),
        param_range=(0.0, 1.0),
    )
    slope = {1: 0.36, 2: 0.36, 3: 0.36, 4: 0.36, 5: 0.55}

    def fake_ssim(reference, spec, *, level=None, strength=None, seed_level=None):
        param = spec.param_for(strength=strength) if strength is not None else spec.param_for(level)
        return 1.0 - slope[seed_level or level] * float(param)

    monkeypatch.setattr(levels, "presented_ssim", fake_ssim)
    tuned = levels.tune_levels(spec, [SimpleNamespace(name="draws", modality="ct", image=None)])
    assert tuned.reachable == [True] * 5
    assert tuned.in_band == [True] * 5
    assert tuned.strengths == sorted(tuned.strengths)
