"""The corruption engine: seeds, severities, replay, batches, errors, and byte-equality across processes."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest

from medfm_robust_plugin import (
    SeverityError,
    UnknownCorruptionError,
    corrupt,
    corrupt_batch,
    get_corruption,
    list_corruptions,
    sample_seed,
)
from medfm_robust_plugin.data.phantoms import ct_slice, dermoscopy


def test_sample_seed_is_a_stable_hash_not_call_order():
    first = sample_seed(0, "ISIC2016", "ISIC_0000", "gaussian_noise", 3)
    assert first == sample_seed(0, "ISIC2016", "ISIC_0000", "gaussian_noise", 3)
    # pinned: a change here would silently change every published corrupted image
    assert first == 1171814095526447306
    others = {
        sample_seed(1, "ISIC2016", "ISIC_0000", "gaussian_noise", 3),
        sample_seed(0, "BUSI", "ISIC_0000", "gaussian_noise", 3),
        sample_seed(0, "ISIC2016", "ISIC_0001", "gaussian_noise", 3),
        sample_seed(0, "ISIC2016", "ISIC_0000", "shot_noise", 3),
        sample_seed(0, "ISIC2016", "ISIC_0000", "gaussian_noise", 4),
    }
    assert first not in others and len(others) == 5
    assert 0 <= first < 2**63


CROSS_PROCESS = """
import hashlib, sys
import numpy as np
from medfm_robust_plugin import corrupt, list_corruptions
from medfm_robust_plugin.data.phantoms import dermoscopy
image = dermoscopy(96, seed=5).image
names = sys.argv[1:]
for name in (reversed(names) if names[0] == "gaussian_noise" else names):
    out = corrupt(image, name, severity=4, seed=11)
    print(name, hashlib.sha256(out.tobytes()).hexdigest())
"""


def test_same_bytes_in_other_processes_and_any_order():
    names = [c.name for c in list_corruptions(family="natural")]
    names.sort(key=lambda n: n != "gaussian_noise")  # the script reverses the order for one run

    def run(order):
        done = subprocess.run(
            [sys.executable, "-c", CROSS_PROCESS, *order], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return dict(line.split() for line in done.stdout.splitlines())

    a, b = run(names), run(names[::-1])
    image = dermoscopy(96, seed=5).image
    here = {
        n: hashlib.sha256(corrupt(image, n, severity=4, seed=11).tobytes()).hexdigest()
        for n in names
    }
    assert a == b == here


def test_params_are_recorded_and_replay_the_same_image():
    image = ct_slice(64, seed=0).image
    out, params = corrupt(image, "gaussian_noise", 2, seed=9, return_params=True)
    assert params["corruption"] == "gaussian_noise" and params["seed"] == 9
    assert params["param"] == get_corruption("gaussian_noise").severity_params[1]
    assert params["value_range"] == [float(image.min()), float(image.max())]
    replay = corrupt(image, params["corruption"], params["severity"], params["seed"])
    np.testing.assert_array_equal(out, replay)


def test_fractional_severity_and_strength_interpolate_the_table():
    spec = get_corruption("gaussian_noise")
    table = spec.severity_params
    assert spec.param_for(2.5) == pytest.approx((table[1] + table[2]) / 2)
    lo, hi = spec.param_range or (table[0], table[-1])
    assert spec.param_for(strength=0.0) == pytest.approx(lo)
    assert spec.param_for(strength=1.0) == pytest.approx(hi)
    image = dermoscopy(64).image
    _, params = corrupt(image, "gaussian_noise", strength=0.25, seed=0, return_params=True)
    assert params["strength"] == 0.25 and params["severity"] is None


@pytest.mark.parametrize("severity", [0, 6, -1, 5.5, True, "high", None])
def test_bad_severity_is_refused(severity):
    with pytest.raises(SeverityError, match="severity"):
        corrupt(np.zeros((16, 16), np.uint8), "gaussian_noise", severity=severity)


def test_bad_strength_is_refused():
    with pytest.raises(SeverityError, match=r"strength 1.5 must lie in \[0, 1\]"):
        corrupt(np.zeros((16, 16), np.uint8), "gaussian_noise", strength=1.5)


def test_unknown_corruption_suggests_close_names():
    with pytest.raises(UnknownCorruptionError, match="did you mean gaussian_noise"):
        corrupt(np.zeros((16, 16), np.uint8), "gausian_noise")
    with pytest.raises(UnknownCorruptionError, match="corruptions list"):
        corrupt(np.zeros((16, 16), np.uint8), "zzzz")


def test_batch_matches_single_images_whatever_the_workers():
    images = [dermoscopy(48, seed=s).image for s in range(5)]
    ids = [f"case-{s}" for s in range(5)]
    one = corrupt_batch(images, "gaussian_noise", 3, seed=7, sample_ids=ids, dataset="derm")
    two = corrupt_batch(
        images, "gaussian_noise", 3, seed=7, sample_ids=ids, dataset="derm", workers=2
    )
    for k, (a, b) in enumerate(zip(one, two)):
        np.testing.assert_array_equal(a, b)
        single = corrupt(
            images[k], "gaussian_noise", 3, seed=sample_seed(7, "derm", ids[k], "gaussian_noise", 3)
        )
        np.testing.assert_array_equal(a, single)
    # an image's result does not depend on its neighbours
    alone = corrupt_batch(
        images[2:3], "gaussian_noise", 3, seed=7, sample_ids=ids[2:3], dataset="derm"
    )
    np.testing.assert_array_equal(alone[0], one[2])


def test_a_failing_corruption_is_reported_with_sample_and_plugin():
    from medfm_robust_plugin import MedFMRobustError, corruption

    @corruption("always_fails", family="lab", severity_params=[1, 2, 3, 4, 5])
    def always_fails(image, param, rng):
        raise ZeroDivisionError("division by zero")

    with pytest.raises(
        MedFMRobustError, match="'case-3': corruption 'always_fails'.*ZeroDivisionError"
    ):
        corrupt(np.zeros((16, 16), np.uint8), always_fails, sample_id="case-3")

    @corruption("shrinks", family="lab", severity_params=[1, 2, 3, 4, 5])
    def shrinks(image, param, rng):
        return image[:8]

    with pytest.raises(MedFMRobustError, match="must keep the shape"):
        corrupt(np.zeros((16, 16), np.uint8), shrinks)


def test_images_smaller_than_an_ssim_window_are_named_in_ssim_mode_and_unmeasured_in_table_mode():
    import numpy as np

    from medfm_robust_plugin import corrupt
    from medfm_robust_plugin.errors import SeverityError

    tiny = np.full((5, 6), 120, np.uint8)
    with pytest.raises(SeverityError, match=r"tiny.png: .*5 x 6; use mode='table'"):
        corrupt(tiny, "gaussian_noise", 2, mode="ssim", sample_id="tiny.png")
    out, params = corrupt(tiny, "gaussian_noise", 2, return_params=True)
    assert out.shape == tiny.shape and params["ssim"] is None
