"""Corruption suites: the bundled ones per modality, your own through MEDFM_ROBUST_SUITES, and errors."""

from __future__ import annotations

import pytest

from medfm_robust_plugin import list_corruptions
from medfm_robust_plugin.plugins import get_registry
from medfm_robust_plugin.resources import bundled_files
from medfm_robust_plugin.suites import SuiteError, get_suite, load_suite_file, parse_suite

MODALITIES = [
    "ct",
    "mri",
    "xray",
    "ultrasound",
    "endoscopy",
    "dermoscopy",
    "pathology",
    "fundus",
    "oct",
]


def test_every_modality_has_a_bundled_suite():
    names = {path.stem for path in bundled_files("corruptions")}
    assert set(MODALITIES) <= names


@pytest.mark.parametrize("path", bundled_files("corruptions"), ids=lambda p: p.stem)
def test_bundled_suite_names_only_registered_corruptions(path):
    suite = load_suite_file(path)
    assert suite.check() == [], f"{path.name} lists unregistered corruptions"
    assert suite.corruption_names("base"), "a suite starts from the base corruptions"
    assert suite.corruption_names("modality_specific"), "and adds the modality's own"
    for spec in suite.corruptions():
        assert len(spec.severity_params) == 5


def test_listing_by_modality_reads_the_suite():
    suite = get_suite("ct")
    listed = [c.name for c in list_corruptions(modality="ct")]
    assert listed == suite.corruption_names()


def test_user_suite_directory_and_table_override(tmp_path, monkeypatch):
    (tmp_path / "night_shift.yaml").write_text(
        "suite: night_shift\n"
        "modality: xray_portable\n"
        "description: Bedside radiographs taken in a hurry.\n"
        "base: [gaussian_noise]\n"
        "modality_specific:\n"
        "  - name: motion_blur\n"
        "    severity_params: [[4, 1], [6, 2], [8, 3], [10, 4], [12, 5]]\n"
    )
    monkeypatch.setenv("MEDFM_ROBUST_SUITES", str(tmp_path))
    suite = get_suite("night_shift")
    assert get_registry().owners["suites"]["night_shift"] == "medfm_robust_plugin.suites"
    blur = suite.corruption("motion_blur")
    assert blur.severity_params[0] == (4, 1)
    assert [c.name for c in list_corruptions(modality="xray_portable")] == [
        "gaussian_noise",
        "motion_blur",
    ]


@pytest.mark.parametrize(
    "data,message",
    [
        ("- just a list", "must hold a mapping"),
        ({"modality": "ct", "base": ["gaussian_noise"]}, "lacks suite"),
        ({"suite": "a", "modality": "ct"}, "lists no corruptions"),
        ({"suite": "a", "modality": "ct", "base": "gaussian_noise"}, "must be a list"),
        ({"suite": "a", "modality": "ct", "base": ["gaussian_noise", "gaussian_noise"]}, "twice"),
        (
            {"suite": "a", "modality": "ct", "base": [{"name": "x", "severity_params": [1, 2]}]},
            "5 values",
        ),
        ({"suite": "a", "modality": "ct", "base": [{"name": "x", "levels": [1]}]}, "unknown keys"),
        ({"suite": "a", "modality": "ct", "base": [3]}, "must be a name"),
    ],
)
def test_bad_suite_files_name_file_and_problem(data, message):
    with pytest.raises(SuiteError, match=message) as info:
        parse_suite(data, "lab/my_suite.yaml")
    assert "lab/my_suite.yaml" in str(info.value)


def test_unknown_suite_lists_the_known_ones():
    with pytest.raises(SuiteError, match="known suites: .*ct"):
        get_suite("cardiac_mri")
