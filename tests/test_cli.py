"""The medfm-robust command, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from medfm_robust_plugin import load_image, save_image


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def test_import_and_help_stay_light():
    code = (
        "import sys, medfm_robust_plugin, medfm_robust_plugin.cli; "
        "print(sorted(m for m in ('torch', 'numpy', 'cv2', 'transformers', 'vlmeval', 'lm_eval') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]"
    assert "preview" in cli("--help").stdout


def test_help_imports_no_corruption_code_model_library_or_harness():
    code = (
        "import sys\n"
        "from medfm_robust_plugin.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'numpy', 'cv2', 'transformers', 'vlmeval', 'lm_eval', "
        "'medfm_robust_plugin.corruptions.natural', 'medfm_robust_plugin.engine')\n"
        "print('imported:', sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "vlmeval" in done.stdout and "lm-eval-tasks" in done.stdout  # the hosts' commands
    assert done.stdout.strip().endswith("imported: []")


def test_corruptions_list_json_and_by_modality():
    everything = json.loads(cli("corruptions", "list", "--json").stdout)
    names = {c["name"] for c in everything}
    assert {"gaussian_noise", "mri_rician_noise", "ct_metal_streaks"} <= names
    ct = json.loads(cli("corruptions", "list", "--modality", "ct", "--json").stdout)
    assert {c["name"] for c in ct} < names and any(c["family"] == "ct" for c in ct)
    assert "MRI" not in {c["family"] for c in ct}
    table = cli("corruptions", "list", "--family", "natural").stdout
    assert "gaussian_noise" in table and "mri_" not in table


def test_corruptions_show_and_unknown_name():
    shown = json.loads(cli("corruptions", "show", "gaussian_noise", "--json").stdout)
    assert shown["severity_params"] == [0.08, 0.12, 0.18, 0.26, 0.38]
    done = cli("corruptions", "show", "gausian_noise", ok=False)
    assert done.returncode != 0 and "did you mean gaussian_noise" in done.stderr


def test_corrupt_a_16_bit_png_keeps_dtype_and_writes_params(tmp_path):
    src = save_image(
        tmp_path / "xray.png",
        np.random.default_rng(0).integers(500, 3000, (64, 48), dtype=np.uint16),
    )
    out, params = tmp_path / "out.png", tmp_path / "params.json"
    cli(
        "corrupt",
        str(src),
        str(out),
        "-c",
        "gaussian_noise",
        "-s",
        "2",
        "--seed",
        "3",
        "--params",
        str(params),
    )
    result = load_image(out).array
    assert result.dtype == np.uint16 and result.shape == (64, 48)
    recorded = json.loads(params.read_text())
    assert recorded["seed"] == 3 and recorded["severity"] == 2


def test_corrupt_refuses_bad_severity_and_unreadable_input(tmp_path):
    src = save_image(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    bad = cli(
        "corrupt", str(src), str(tmp_path / "b.png"), "-c", "gaussian_noise", "-s", "7", ok=False
    )
    assert bad.returncode == 1 and "outside 1-5" in bad.stderr
    (tmp_path / "junk.png").write_bytes(b"junk")
    junk = cli(
        "corrupt",
        str(tmp_path / "junk.png"),
        str(tmp_path / "c.png"),
        "-c",
        "gaussian_noise",
        ok=False,
    )
    assert junk.returncode == 1 and "junk.png" in junk.stderr and "Traceback" not in junk.stderr


def test_preview_grid_has_a_row_per_corruption_and_a_column_per_severity(tmp_path):
    out = tmp_path / "grid.png"
    cli("preview", "-o", str(out), "--corruptions", "gaussian_noise,contrast", "--tile", "64")
    with Image.open(out) as grid:
        width, height = grid.size
    assert width >= 6 * 64 and 2 * 64 <= height < 3 * 64 + 100


def test_preview_of_a_modality_uses_its_suite_and_phantom(tmp_path):
    out = tmp_path / "mri.png"
    cli("preview", "--modality", "mri", "-o", str(out), "--severities", "1,5", "--tile", "32")
    from medfm_robust_plugin.suites import get_suite

    rows = len(get_suite("mri").entries)
    with Image.open(out) as grid:
        assert grid.size[1] >= rows * 32


def test_plugins_lists_builtins_with_their_registrations():
    data = json.loads(cli("plugins", "--json").stdout)
    natural = next(p for p in data["plugins"] if p["plugin"].endswith("corruptions.natural"))
    assert "gaussian_noise" in natural["corruptions"]
    assert data["failures"] == []


@pytest.mark.parametrize("args", [["--severities", "0-3"], ["--severities", "a,b"]])
def test_preview_rejects_bad_severity_lists(tmp_path, args):
    done = cli("preview", "-o", str(tmp_path / "x.png"), *args, ok=False)
    assert done.returncode == 2 or "severities" in done.stderr


def test_corrupt_a_dicom_in_its_window_or_a_chosen_one(tmp_path):
    from pathlib import Path

    import pydicom

    scan = Path(pydicom.__file__).parent / "data/test_files/CT_small.dcm"
    params = tmp_path / "p.json"
    cli("corrupt", str(scan), str(tmp_path / "o.dcm"), "-c", "gaussian_noise", "-s", "2",
        "--params", str(params))  # fmt: skip
    record = json.loads(params.read_text())
    assert record["value_range"] == [-160.0, 240.0]  # CT in HU: soft tissue
    assert record["pixel_spacing"] == pytest.approx([0.661468, 0.661468])
    assert 0.0 < record["ssim"] < 1.0
    cli("corrupt", str(scan), str(tmp_path / "o.dcm"), "-c", "gaussian_noise",
        "--window", "lung", "--params", str(params))  # fmt: skip
    assert json.loads(params.read_text())["value_range"] == [-1350.0, 150.0]
    bad = cli("corrupt", str(scan), str(tmp_path / "o.dcm"), "-c", "gaussian_noise",
              "--window", "1,2,3", ok=False)  # fmt: skip
    assert bad.returncode != 0 and "--window" in bad.stderr


def test_corrupt_in_ssim_mode_says_when_the_band_was_not_reached(tmp_path):
    """Frost cannot bring a plain square down to level 5's SSIM band: the user is told so."""
    image = np.full((32, 32), 128, np.uint8)
    image[8:24, 8:24] = 200
    save_image(tmp_path / "square.png", image)
    done = cli("corrupt", str(tmp_path / "square.png"), str(tmp_path / "out.png"), "-c", "frost",
               "-s", "5", "--mode", "ssim")  # fmt: skip
    assert (tmp_path / "out.png").exists()
    (warning,) = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert "level 5 SSIM band 0.50-0.59 not reached" in warning and "SSIM 0.6" in warning
    reached = cli("corrupt", str(tmp_path / "square.png"), str(tmp_path / "out2.png"), "-c",
                  "frost", "-s", "2", "--mode", "ssim")  # fmt: skip
    assert "warning" not in reached.stderr


def test_the_band_warning_says_where_ssim_was_measured(tmp_path):
    """On a real abdominal CT, rings at full strength stop above level 5's band over the body
    (30% of the frame); the warning says that the SSIM is the body's."""
    from medfm_robust_plugin.data.reference_set import package_file, reference_entries

    (entry,) = [e for e in reference_entries("ct") if e.name == "ct_abdomen"]
    done = cli("corrupt", str(package_file(entry)), str(tmp_path / "rings.dcm"), "-c",
               "ct_ring_artifact", "-s", "5", "--mode", "ssim")  # fmt: skip
    (warning,) = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert "level 5 SSIM band 0.50-0.59 not reached" in warning
    assert "over the body (30% of the frame)" in warning


def test_preview_needs_a_modality_or_corruptions_and_titles_what_it_shows(tmp_path):
    done = cli("preview", "-o", str(tmp_path / "all.png"), ok=False)
    assert done.returncode == 1 and not (tmp_path / "all.png").exists()
    assert "--modality" in done.stderr and "--corruptions" in done.stderr

    from medfm_robust_plugin.cli.corrupt import _what
    from medfm_robust_plugin.engine import get_corruption, list_corruptions

    chosen = [get_corruption(n) for n in ("gaussian_noise", "contrast")]
    assert _what(chosen, ["gaussian_noise", "contrast"], None) == "gaussian_noise, contrast"
    mri = list_corruptions(modality="mri")
    assert _what(mri, None, "mri") == f"mri suite ({len(mri)} corruptions)"


def test_a_preview_is_wide_enough_for_its_title():
    from medfm_robust_plugin.preview import _font, preview_grid

    title = "MedFM-Robust  dermoscopy phantom  gaussian_noise, contrast  (table severities)"
    image = np.full((32, 32), 120, np.uint8)
    grid = preview_grid(image, ["contrast"], severities=(1,), tile=16, title=title)
    assert grid.size[0] >= _font(14).getlength(title)
