"""The corrupted-view layer every host goes through: same pixels everywhere, cached by content."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys

import numpy as np

from medfm_robust_plugin import corrupt, get_corruption, sample_seed
from medfm_robust_plugin.tasks import Condition, get_task
from medfm_robust_plugin.views import CorruptedViews

NOISE3 = Condition("gaussian_noise", 3)


def mini_samples(task="MedFMRobust-Mini-VQA"):
    return get_task(task).load().samples


def test_view_equals_corrupt_with_the_sample_seed():
    sample = mini_samples()[3]
    view = CorruptedViews(global_seed=5).get(sample, NOISE3)
    seed = sample_seed(5, sample.dataset, sample.id, "gaussian_noise", 3)
    np.testing.assert_array_equal(
        view.image,
        corrupt(sample.load_image(), "gaussian_noise", 3, seed, modality=sample.modality),
    )
    assert view.seed == seed and view.params["seed"] == seed
    assert view.record()["condition"] == "gaussian_noise_s3"


def test_clean_view_is_the_clean_image():
    sample = mini_samples()[0]
    view = CorruptedViews().get(sample)
    np.testing.assert_array_equal(view.image, sample.load_image())
    assert view.params is None and view.seed is None


VIEW_HASHES = """
import hashlib, sys
from medfm_robust_plugin.tasks import Condition, get_task
from medfm_robust_plugin.views import CorruptedViews
views = CorruptedViews(global_seed=1, cache_dir=sys.argv[1] if len(sys.argv) > 1 else None)
for sample in get_task("MedFMRobust-Mini-VQA").load().samples[:12]:
    for condition in (Condition("gaussian_noise", 2), Condition("contrast", 4)):
        view = views.get(sample, condition)
        print(view.key, hashlib.sha256(view.image.tobytes()).hexdigest())
"""


def _hashes(*args):
    done = subprocess.run(
        [sys.executable, "-c", VIEW_HASHES, *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_same_bytes_in_another_process():
    here = CorruptedViews(global_seed=1)
    lines = []
    for sample in mini_samples()[:12]:
        for condition in (Condition("gaussian_noise", 2), Condition("contrast", 4)):
            view = here.get(sample, condition)
            lines.append(f"{view.key} {hashlib.sha256(view.image.tobytes()).hexdigest()}")
    assert _hashes() == "\n".join(lines) + "\n"


def test_disk_cache_is_shared_by_processes_and_reused(tmp_path):
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", VIEW_HASHES, str(cache)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and outputs[0] == outputs[1]
    views = CorruptedViews(global_seed=1, cache_dir=cache)
    for sample in mini_samples()[:12]:
        views.get(sample, Condition("gaussian_noise", 2))
    assert views.stats["computed"] == 0 and views.stats["disk_hits"] == 12
    assert not list(cache.rglob(".tmp-*"))


def test_a_suite_table_override_is_a_different_view():
    sample = mini_samples()[1]
    views = CorruptedViews()
    default = views.get(sample, NOISE3)
    stronger = dataclasses.replace(
        get_corruption("gaussian_noise"), severity_params=(0.1, 0.2, 0.5, 0.6, 0.7)
    )
    override = views.get(sample, NOISE3, corruption=stronger)
    assert default.key != override.key
    assert override.params["param"] == 0.5 and not np.array_equal(default.image, override.image)


def test_ssim_mode_keeps_one_pattern_across_levels_and_records_calibration():
    sample = mini_samples("MedFMRobust-Mini-Seg")[0]
    views = CorruptedViews(mode="ssim")
    spec = dataclasses.replace(get_corruption("gaussian_noise"), param_range=(0.0, 0.8))
    one = views.get(sample, Condition("gaussian_noise", 1), corruption=spec)
    five = views.get(sample, Condition("gaussian_noise", 5), corruption=spec)
    assert one.seed == five.seed
    assert one.params["calibration"]["in_band"] and five.params["calibration"]["in_band"]
    assert one.params["calibration"]["ssim"] > five.params["calibration"]["ssim"]


def test_display_of_ct_uses_a_soft_tissue_window_and_keeps_brightness_changes():
    ct = next(s for s in mini_samples() if s.modality == "ct")
    views = CorruptedViews()
    clean = views.display(views.get(ct))
    brighter = views.display(views.get(ct, Condition("brightness", 5)))
    assert clean.dtype == np.uint8 and clean.shape == (128, 128, 3)
    assert views.window(ct) == (-160.0, 240.0)
    assert brighter.mean() > clean.mean() + 5


def test_png_path_is_content_addressed(tmp_path):
    sample = mini_samples()[2]
    views = CorruptedViews(cache_dir=tmp_path)
    view = views.get(sample, NOISE3)
    path = views.png_path(view)
    assert path.exists() and view.key in path.name
    assert views.png_path(views.get(sample, NOISE3)) == path
    from PIL import Image

    with Image.open(path) as png:
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), views.display(view))
