"""The one modality table: keys, labels, and how text, prompts and dataset names denote them."""

import pytest

from medfm_robust_plugin import modalities
from medfm_robust_plugin.data.loaders.modality_names import modality_from_text as loader_text
from medfm_robust_plugin.hosts.vlmeval_robustified import guess_modality
from medfm_robust_plugin.models.baselines import named_modality
from medfm_robust_plugin.suites import suite_for_modality


def test_every_key_has_one_entry_a_label_and_a_suite():
    keys = [m.key for m in modalities.TABLE]
    assert len(keys) == len(set(keys)) and set(keys) == set(modalities.MODALITIES)
    assert modalities.label("xray") == "X-ray" and modalities.label("nope") == "nope"
    for key in modalities.MODALITIES:
        assert suite_for_modality(key) is not None, key


def test_loaders_use_the_same_words():
    assert loader_text is modalities.modality_from_text


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ISIC2016", "dermoscopy"),
        ("Kvasir-SEG", "endoscopy"),
        ("PathVQA", "pathology"),
        ("ChestXray14", "xray"),
        ("Retina OCT", "oct"),  # not CT
        ("FLARE22", "ct"),
        ("MMMU_DEV_VAL", None),
    ],
)
def test_dataset_names_map_to_their_modality(name, key):
    assert guess_modality(name) == key


def test_a_prompt_is_read_for_the_modality_it_names_first():
    assert named_modality("An optical coherence tomography scan, unlike a CT scan") == "oct"
    assert named_modality("Is this CT or MRI?") == "ct"
    assert named_modality("What does the B-mode image show?") == "ultrasound"
    assert named_modality("Describe the picture.") is None
