"""Dataset loaders: each reads a tiny copy of its release's layout, keeps the good items and skips
the bad ones with a reason that says what is wrong."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from medfm_robust_plugin.data.loaders import LOADERS
from medfm_robust_plugin.data.loaders.base import DatasetLayoutError
from medfm_robust_plugin.data.loaders.choices import answer_letter, options_from_value
from medfm_robust_plugin.data.loaders.modality_names import modality_from_text
from medfm_robust_plugin.data.sample import TASK_KINDS, DatasetLoader, Sample
from medfm_robust_plugin.errors import MedFMRobustError
from medfm_robust_plugin.plugins import get_registry

from . import fixtures_datasets as fx

HAS_DATASETS = importlib.util.find_spec("datasets") is not None
HAS_H5PY = importlib.util.find_spec("h5py") is not None
needs_datasets = pytest.mark.skipif(not HAS_DATASETS, reason="needs the `datasets` package")
needs_h5py = pytest.mark.skipif(not HAS_H5PY, reason="needs h5py")


def loader(name: str):
    return get_registry().get("datasets", name)


def by_id(result) -> dict[str, Sample]:
    return {s.id: s for s in result.samples}


def reasons(result) -> dict[str, str]:
    return {s.id: s.reason for s in result.skipped}


def assert_box_is_mask_box(sample: Sample) -> None:
    mask = sample.load_mask()
    ys, xs = np.nonzero(mask)
    assert sample.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


# ---------------------------------------------------------------------- registration


def test_every_registered_loader_follows_the_protocol():
    registry = get_registry()
    names = {cls.name for cls in LOADERS}
    assert names <= set(registry.names("datasets"))
    for name in names:
        item = registry.get("datasets", name)
        assert isinstance(item, DatasetLoader)
        assert set(item.kinds) <= set(TASK_KINDS) and item.kinds
        assert item.description and item.access, name


def test_a_missing_root_names_the_dataset_and_the_path(tmp_path):
    with pytest.raises(MedFMRobustError, match=r"isic2016.*does not exist"):
        loader("isic2016").load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "name",
    [
        "omnimedvqa",
        "rocov2",
        "iu_xray",
        "mecovqa_g_plus",
        "isic2016",
        "brain_tumor_mri",
        "busi",
        "kvasir_seg",
        "monuseg",
        "refuge",
        "flare22",
        "image_folder",
    ],
)
def test_a_root_without_the_layout_says_what_was_expected(tmp_path, name):
    (tmp_path / "stray.txt").write_text("not a dataset")
    with pytest.raises(
        DatasetLayoutError, match=rf"dataset '{name}': '.*' does not hold .*expected"
    ):
        loader(name).load(tmp_path)


def test_unknown_options_and_splits_are_refused_with_the_choices(tmp_path):
    fx.make_isic2016(tmp_path)
    with pytest.raises(MedFMRobustError, match="no option 'colour'.*split"):
        loader("isic2016").load(tmp_path, colour="red")
    with pytest.raises(MedFMRobustError, match="no split 'dev'.*train, test"):
        loader("isic2016").load(tmp_path, split="dev")


def test_limit_counts_samples_and_order_is_stable(tmp_path):
    fx.make_omnimedvqa(tmp_path)
    first = loader("omnimedvqa").load(tmp_path, limit=1)
    assert [s.id for s in first.samples] == ["ACRIMA_0001"]
    again = loader("omnimedvqa").load(tmp_path)
    assert [s.id for s in again.samples] == [
        s.id for s in loader("omnimedvqa").load(tmp_path).samples
    ]
    assert loader("omnimedvqa").load(tmp_path, limit=0).samples == []


# ---------------------------------------------------------------------- VQA


def test_omnimedvqa_reads_open_access_items_and_skips_bad_ones(tmp_path):
    fx.make_omnimedvqa(tmp_path)
    result = loader("omnimedvqa").load(tmp_path / "OmniMedVQA")
    samples = by_id(result)
    assert list(samples) == ["ACRIMA_0001", "BUSI_0001"]
    acrima = samples["ACRIMA_0001"]
    assert acrima.options == {"A": "Yes, it's glaucoma.", "B": "No, it's normal."}
    assert acrima.answer == "B" and acrima.modality == "fundus"
    assert acrima.meta["question_type"] == "Disease Diagnosis"
    assert samples["BUSI_0001"].answer == "C"  # 'malignant tumor.' matches 'Malignant tumor'
    assert samples["BUSI_0001"].modality == "ultrasound"
    assert acrima.load_image().shape == (fx.H, fx.W, 3)
    why = reasons(result)
    assert "image file is missing" in why["ACRIMA_0002"]
    assert why["ACRIMA_0003"] == "question has no answer"
    assert "'Cataract' is not among the options" in why["ACRIMA_0004"]
    assert "2 samples, 3 skipped" in result.summary()


def test_omnimedvqa_restricted_items_resolve_against_the_source_datasets(tmp_path):
    fx.make_omnimedvqa(tmp_path)
    result = loader("omnimedvqa").load(
        tmp_path, split="restricted", restricted_root=str(tmp_path / "sources")
    )
    (sample,) = result.samples
    assert sample.id == "Chest_CT_0001" and sample.modality == "ct" and sample.answer == "A"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("CT(Computed Tomography)", "ct"),
        ("MR (Mag-netic Resonance Imaging)", "mri"),
        ("X-Ray", "xray"),
        ("OCT (Optical Coherence Tomography", "oct"),
        ("Fundus Photography", "fundus"),
        ("Microscopy Images", "pathology"),
        ("Dermoscopy", "dermoscopy"),
        ("Endoscopy", "endoscopy"),
        ("Infrared Reflectance Imaging", "other"),
        ("mr_t1", "mri"),
        ("x_ray", "xray"),
        (None, "other"),
    ],
)
def test_modality_names_map_to_benchmark_keys(text, key):
    assert modality_from_text(text) == key


def test_answers_match_options_by_text_letter_or_loosely():
    options = {"A": "Left", "B": "Right."}
    assert answer_letter("Right.", options) == "B"
    assert answer_letter("(a)", options) == "A"
    assert answer_letter("right", options) == "B"
    assert answer_letter("up", options) is None
    assert options_from_value('["A. yes", "B. no"]') == {"A": "yes", "B": "no"}
    assert options_from_value("{'A': 'x', 'B': 'y'}") == {"A": "x", "B": "y"}


def test_qa_table_csv_with_letter_columns(tmp_path):
    path = fx.make_qa_csv(tmp_path)
    result = loader("qa_table").load(path)
    samples = by_id(result)
    assert list(samples) == ["q1", "q2"]
    assert samples["q1"].options == {"A": "CT", "B": "MRI", "C": "X-ray"}
    assert samples["q1"].answer == "B" and samples["q1"].modality == "mri"
    assert samples["q2"].options == {"A": "yes", "B": "no"} and samples["q2"].answer == "B"
    assert samples["q2"].image == tmp_path / "imgs/b.png"
    why = reasons(result)
    assert why["q3"] == "question has no answer"
    assert "image file is missing: imgs/zzz.png" in why["q4"]


def test_qa_table_jsonl_with_list_and_json_options(tmp_path):
    fx.make_qa_jsonl(tmp_path)
    result = loader("qa_table").load(tmp_path / "data", modality="ct")
    samples = by_id(result)
    assert (
        samples["row1"].options == {"A": "liver", "B": "spleen"} and samples["row1"].answer == "B"
    )
    assert samples["row2"].options == {"A": "kidney", "B": "lung"} and samples["row2"].answer == "A"
    assert samples["row1"].modality == "ct"
    assert "'heart' is not among the options" in reasons(result)["row3"]


def test_vlmeval_tsv_decodes_base64_lazily_and_follows_image_references(tmp_path):
    path = fx.make_vlmeval_tsv(tmp_path)
    result = loader("vlmeval_tsv").load(path)
    samples = by_id(result)
    assert list(samples) == ["0", "1"]
    assert callable(samples["0"].image)  # nothing decoded yet
    assert np.array_equal(samples["0"].load_image(), fx.rgb_image(seed=1))
    assert np.array_equal(samples["1"].load_image(), fx.rgb_image(seed=1))
    assert samples["0"].answer == "B" and samples["0"].modality == "mri"
    assert samples["0"].options == {"A": "lung", "B": "brain", "C": "bone"}
    why = reasons(result)
    assert "does not hold a PNG" in why["2"]
    assert why["3"] == "question has no answer"


@needs_datasets
def test_hf_dataset_maps_columns_of_an_in_memory_dataset():
    columns = {
        "image": "img",
        "question": "q",
        "options": "choices",
        "answer": "label",
        "id": "uid",
    }
    result = loader("hf_dataset").load(hub_dataset=fx.hub_vqa_dataset(), columns=columns)
    (sample,) = result.samples
    assert sample.id == "h1" and sample.options == {"A": "liver", "B": "spleen"}
    assert sample.answer == "B" and sample.modality == "other"
    assert np.array_equal(sample.load_image(), fx.rgb_image(seed=1))
    assert "'up' is not among the options" in reasons(result)["h2"]


@needs_datasets
def test_hf_dataset_reads_a_save_to_disk_folder_and_rejects_unknown_columns(tmp_path):
    fx.hub_vqa_dataset().save_to_disk(str(tmp_path / "saved"))
    columns = {"image": "img", "question": "q", "options": "choices", "answer": "label"}
    result = loader("hf_dataset").load(tmp_path / "saved", columns=columns, modality="xray")
    assert [s.id for s in result.samples] == ["row000000"] and result.samples[0].modality == "xray"
    with pytest.raises(MedFMRobustError, match=r"columns \['nope'\] are not in the dataset"):
        loader("hf_dataset").load(tmp_path / "saved", columns={"image": "nope"})


# ---------------------------------------------------------------------- captions and reports


def test_rocov2_reads_captions_with_modality_from_concepts(tmp_path):
    fx.make_rocov2(tmp_path)
    result = loader("rocov2").load(tmp_path)
    samples = by_id(result)
    first, second = samples["ROCOv2_2023_test_000001"], samples["ROCOv2_2023_test_000002"]
    assert first.answer == "Axial CT showing a hepatic lesion." and first.modality == "ct"
    assert second.modality == "other" and second.meta["cuis"] == ["C0817096"]
    assert first.question is None
    why = reasons(result)
    assert why["ROCOv2_2023_test_000003"] == "caption is empty"
    assert "image file is missing" in why["ROCOv2_2023_test_000004"]
    with pytest.raises(DatasetLayoutError, match="rocov2"):
        loader("rocov2").load(tmp_path, split="train")


@needs_datasets
def test_rocov2_reads_its_hub_schema(tmp_path):
    path = fx.hub_rocov2_dataset(tmp_path)
    result = loader("rocov2").load(hub_id=str(path), split="test")
    (sample,) = result.samples
    assert sample.id == "ROCOv2_2023_test_000001" and sample.modality == "ultrasound"
    assert np.array_equal(sample.load_image(), fx.rgb_image(seed=3)[..., ::-1])
    assert reasons(result)["ROCOv2_2023_test_000002"] == "caption is empty"
    validation = loader("rocov2").load(hub_id=str(path), split="valid")
    assert [s.id for s in validation.samples] == ["ROCOv2_2023_test_000001"]


def test_iu_xray_r2gen_release_with_its_split(tmp_path):
    fx.make_iu_xray_r2gen(tmp_path)
    result = loader("iu_xray").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "CXR1_1_IM-0001" and sample.modality == "xray"
    assert sample.answer == "The heart is normal in size."
    assert sample.image == tmp_path / "images/CXR1_1_IM-0001/0.png"
    why = reasons(result)
    assert "image file is missing" in why["CXR10_IM-0002"]
    assert "no findings or impression" in why["CXR3_IM-1384"]
    train = loader("iu_xray").load(tmp_path, split="train")
    assert [s.id for s in train.samples] == ["CXR2_IM-0652"]


def test_iu_xray_openi_release_joins_findings_and_impression(tmp_path):
    fx.make_iu_xray_openi(tmp_path)
    with pytest.raises(MedFMRobustError, match="no train/val/test split"):
        loader("iu_xray").load(tmp_path)
    result = loader("iu_xray").load(tmp_path, split="all")
    (sample,) = result.samples
    assert sample.id == "CXR1" and sample.answer == "The lungs are clear. No acute disease."
    assert sample.image.name == "CXR1_1_IM-0001-3001.png"
    assert sample.meta["views"] == ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]
    why = reasons(result)
    assert "no findings or impression" in why["CXR2"]
    assert "image file is missing" in why["CXR3"]
    impression = loader("iu_xray").load(tmp_path, split="all", sections="impression")
    assert impression.samples[0].answer == "No acute disease."


def test_iu_xray_kaggle_release_picks_the_frontal_view(tmp_path):
    fx.make_iu_xray_kaggle(tmp_path)
    result = loader("iu_xray").load(tmp_path, split="all")
    (sample,) = result.samples
    assert sample.id == "CXR1" and sample.meta["projection"] == "Frontal"
    assert sample.image.name == "1_IM-0001-3001.dcm.png"
    assert "no image in indiana_projections.csv" in reasons(result)["CXR2"]


# ---------------------------------------------------------------------- grounding


def test_mecovqa_boxes_become_pixels_from_each_convention(tmp_path):
    fx.make_mecovqa(tmp_path)
    result = loader("mecovqa_g_plus").load(tmp_path)
    samples = by_id(result)
    assert list(samples) == ["g1", "g2", "g3"]
    g1, g2, g3 = samples["g1"], samples["g2"], samples["g3"]
    assert g1.question == "Where is the liver?" and g1.modality == "ct"
    assert g1.box == (10.0, 5.0, 30.0, 10.0) and g1.meta["box_source"] == "unit"  # 40 x 20 image
    assert g2.box == (2.0, 3.0, 12.0, 13.0) and g2.modality == "mri"
    assert g3.box == (6.0, 4.0, 20.0, 10.0) and g3.meta["box_source"] == "mask"
    assert g3.modality == "ultrasound"
    why = reasons(result)
    assert "image file is missing" in why["g4"]
    assert "degenerate" in why["g5"]
    assert why["g6"] == "record has no referring question"
    assert "mask is 10x10 pixels but the image is 32x24" in why["g7"]
    train = loader("mecovqa_g_plus").load(tmp_path, split="train")
    assert train.samples[0].box == pytest.approx((3.0, 3.0, 15.0, 15.0))


def test_mecovqa_box_format_can_be_stated(tmp_path):
    fx.make_mecovqa(tmp_path)
    result = loader("mecovqa_g_plus").load(tmp_path, split="train", box_format="per_mille")
    assert result.samples[0].box == pytest.approx((0.003, 0.003, 0.015, 0.015))
    with pytest.raises(MedFMRobustError, match="box_format must be one of"):
        loader("mecovqa_g_plus").load(tmp_path, box_format="xywh")


# ---------------------------------------------------------------------- segmentation


def test_isic2016_pairs_images_with_segmentation_masks(tmp_path):
    fx.make_isic2016(tmp_path)
    result = loader("isic2016").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "ISIC_0000001" and sample.modality == "dermoscopy"
    assert sample.box == (8.0, 5.0, 20.0, 15.0)
    assert (
        sample.mask
        == tmp_path / "ISBI2016_ISIC_Part1_Test_GroundTruth/ISIC_0000001_Segmentation.png"
    )
    assert_box_is_mask_box(sample)
    why = reasons(result)
    assert "mask is 32x26 pixels but the image is 32x24" in why["ISIC_0000002"]
    assert why["ISIC_0000003"] == "mask is empty: no foreground pixel to segment"
    assert why["ISIC_0000004"] == "no mask file for this image"
    assert "image file is missing" in why["ISIC_0000005"]
    assert [s.id for s in loader("isic2016").load(tmp_path, split="train").samples] == [
        "ISIC_0000100"
    ]


def test_busi_merges_extra_masks_and_skips_normal_images(tmp_path):
    fx.make_busi(tmp_path)
    result = loader("busi").load(tmp_path)
    samples = by_id(result)
    assert list(samples) == ["benign_1", "benign_10"]
    merged = samples["benign_1"]
    assert merged.box == (2.0, 2.0, 30.0, 14.0) and merged.meta["lesion_masks"] == 2
    mask = merged.load_mask()
    assert mask.sum() == 4 * 6 + 4 * 10 and not mask[8, 10]
    why = reasons(result)
    assert "mask is 36x24 pixels" in why["benign_2"]
    assert why["benign_3"] == "no mask file for this image"
    assert why["malignant_1"] == "mask is empty: no foreground pixel to segment"
    assert "image file is missing" in why["malignant_2"]
    assert why["normal_1"].startswith("normal case")


def test_kvasir_seg_thresholds_jpeg_masks(tmp_path):
    fx.make_kvasir(tmp_path)
    result = loader("kvasir_seg").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "cju0qkwl35piu0993l0dewei2" and sample.modality == "endoscopy"
    assert sample.box == (6.0, 4.0, 22.0, 16.0)
    assert sample.load_mask().sum() == 12 * 16  # JPEG ringing stays below the threshold
    assert sample.meta["polyp_boxes"] == [[6, 4, 22, 16]]
    why = reasons(result)
    assert why["cju0qoxqj9q6s0835b43399p4"].startswith("mask is empty")
    assert "image file is missing" in why["cju0sr5ghl0nd08789uzf1raf"]


def test_refuge_disc_includes_the_cup_and_cup_is_an_option(tmp_path):
    fx.make_refuge(tmp_path)
    result = loader("refuge").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "T0001" and sample.modality == "fundus"
    assert sample.box == (6.0, 4.0, 20.0, 16.0) and sample.load_mask().sum() == 12 * 14
    assert sample.meta["glaucoma"] is False
    why = reasons(result)
    assert "mask is 32x32 pixels" in why["T0002"]
    assert why["T0003"].startswith("mask is empty")
    assert "image file is missing" in why["T0004"]
    cup = loader("refuge").load(tmp_path, target="cup").samples[0]
    assert cup.box == (10.0, 8.0, 15.0, 12.0)
    train = loader("refuge").load(tmp_path, split="train").samples
    assert [s.id for s in train] == ["g0001"] and train[0].meta["glaucoma"] is True
    assert [s.id for s in loader("refuge").load(tmp_path, split="val").samples] == ["V0001"]


def test_monuseg_one_sample_per_nucleus(tmp_path):
    fx.make_monuseg(tmp_path)
    result = loader("monuseg").load(tmp_path)
    samples = by_id(result)
    tile = "TCGA-2Z-A9J9-01A-01-TS1"
    assert list(samples) == [f"{tile}_n0001", f"{tile}_n0002"]
    square = samples[f"{tile}_n0001"]
    assert square.box == (4.0, 4.0, 11.0, 10.0) and square.modality == "pathology"
    for sample in samples.values():
        assert sample.load_mask().shape == (fx.H, fx.W)
        assert_box_is_mask_box(sample)
    why = reasons(result)
    assert "fewer than 3" in why[f"{tile}_n0003"]
    assert "outside the tile" in why[f"{tile}_n0004"]
    assert "image file is missing" in why["TCGA-44-2665-01B-06-BS6"]
    tiles = loader("monuseg").load(tmp_path, unit="tile")
    assert tiles.samples[0].id == tile and tiles.samples[0].meta["nuclei"] == 2
    train = loader("monuseg").load(tmp_path, split="train")
    assert [s.id for s in train.samples] == ["TCGA-18-5592-01Z-00-DX1_n0001"]


def test_brain_tumor_mri_kaggle_lgg(tmp_path):
    fx.make_brain_lgg(tmp_path)
    result = loader("brain_tumor_mri").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "TCGA_CS_4941_19960909_1" and sample.modality == "mri"
    assert sample.box == (5.0, 3.0, 12.0, 9.0)
    why = reasons(result)
    assert why["TCGA_CS_4941_19960909_2"].startswith("mask is empty")
    assert "mask is 32x48 pixels" in why["TCGA_CS_4941_19960909_3"]
    assert "image file is missing" in why["TCGA_CS_4941_19960909_4"]


@needs_h5py
def test_brain_tumor_mri_figshare_mat_files(tmp_path):
    fx.make_brain_figshare(tmp_path)
    result = loader("brain_tumor_mri").load(tmp_path)
    (sample,) = result.samples
    assert sample.id == "1" and sample.meta == {
        "tumour": "glioma",
        "patient": "MR040",
        "release": "figshare",
    }
    image = sample.load_image()
    assert image.dtype == np.int16 and image.shape == (fx.H, fx.W) and image[1, 0] == fx.W * 3
    assert sample.box == (3.0, 2.0, 9.0, 10.0)
    assert_box_is_mask_box(sample)
    why = reasons(result)
    assert why["2"].startswith("mask is empty")
    assert "tumorMask is 32x12 pixels but the image is 32x24" in why["3"]
    assert "cannot be read as a MATLAB v7.3" in why["4"]


def test_flare22_axial_slices_in_hu_with_an_organ(tmp_path):
    fx.make_flare22(tmp_path)
    result = loader("flare22").load(tmp_path)
    samples = by_id(result)
    assert list(samples) == ["FLARE22_Tr_0001_slice1", "FLARE22_Tr_0001_slice2"]
    first = samples["FLARE22_Tr_0001_slice1"]
    image = first.load_image()
    assert image.dtype == np.int16 and image.shape == (fx.H, fx.W) and image.min() < 0
    assert first.box == (5.0, 2.0, 15.0, 8.0) and first.modality == "ct"
    assert first.meta["spacing"] == pytest.approx([0.8, 0.8, 2.5])
    assert_box_is_mask_box(first)
    why = reasons(result)
    assert "image volume is missing" in why["FLARE22_Tr_0002"]
    assert "differ in shape" in why["FLARE22_Tr_0003"]
    assert why["FLARE22_Tr_0004"] == "no slice shows the liver"
    spleen = loader("flare22").load(tmp_path, organ="spleen")
    assert "FLARE22_Tr_0004_slice3" in by_id(spleen)
    with pytest.raises(MedFMRobustError, match="unknown organ 'brain'"):
        loader("flare22").load(tmp_path, organ="brain")


def test_image_folder_pairs_by_stem_with_a_mask_suffix(tmp_path):
    fx.make_image_folder(tmp_path)
    result = loader("image_folder").load(tmp_path, mask_suffix="_mask", modality="ultrasound")
    (sample,) = result.samples
    assert (
        sample.id == "case_a"
        and sample.modality == "ultrasound"
        and sample.box == (3.0, 2.0, 9.0, 7.0)
    )
    why = reasons(result)
    assert why["case_b"] == "no mask file for this image"
    assert why["case_c"].startswith("mask is empty")


def test_image_folder_loads_the_documented_layout_without_options(tmp_path):
    """docs/datasets.md: images/case_a.png with masks/case_a_mask.png, no mask_suffix needed."""
    fx.make_image_folder(tmp_path)
    fx.write(tmp_path / "images/case_d.png", fx.rgb_image(seed=4))
    fx.write(tmp_path / "masks/case_d.png", fx.rect_mask(2, 3, 7, 9))  # the image's own name
    result = loader("image_folder").load(tmp_path)
    assert [s.id for s in result.samples] == ["case_a", "case_d"]
    assert reasons(result)["case_b"] == "no mask file for this image"
    only_same_name = loader("image_folder").load(tmp_path, mask_suffix="")
    assert [s.id for s in only_same_name.samples] == ["case_d"]


# ---------------------------------------------------------------------- contracts across loaders


def test_omnimedvqa_keeps_items_whose_question_ids_repeat_across_files(tmp_path):
    fx.make_omnimedvqa(tmp_path)
    qa = tmp_path / "OmniMedVQA/QA_information/Open-access"
    (qa / "ZZZ.json").write_text((qa / "BUSI.json").read_text())
    ids = [s.id for s in loader("omnimedvqa").load(tmp_path).samples]
    assert ids == ["ACRIMA_0001", "BUSI_0001", "ZZZ/BUSI_0001"]


def test_repeated_ids_in_a_table_are_skipped(tmp_path):
    fx.write(tmp_path / "a.png", fx.rgb_image())
    rows = [{"id": "x", "image": "a.png", "question": "q?", "A": "1", "B": "2", "answer": "A"}] * 2
    result = loader("qa_table").load(fx.write_csv(tmp_path / "t.csv", rows))
    assert [s.id for s in result.samples] == ["x"]
    assert result.skipped[0].reason.startswith("duplicate id")


def test_samples_with_lazy_sources_survive_pickling(tmp_path):
    import pickle

    fx.make_kvasir(tmp_path / "k")
    fx.make_monuseg(tmp_path / "m")
    fx.make_flare22(tmp_path / "f")
    fx.make_vlmeval_tsv(tmp_path / "v")
    samples = [
        loader("kvasir_seg").load(tmp_path / "k").samples[0],
        loader("monuseg").load(tmp_path / "m").samples[0],
        loader("flare22").load(tmp_path / "f").samples[0],
        loader("vlmeval_tsv").load(tmp_path / "v").samples[0],
    ]
    for sample in samples:
        copy = pickle.loads(pickle.dumps(sample))
        assert np.array_equal(copy.load_image(), sample.load_image())
        if sample.mask is not None:
            assert np.array_equal(copy.load_mask(), sample.load_mask())


def test_hub_id_true_means_the_release_id(monkeypatch):
    from medfm_robust_plugin.data.loaders import hub

    asked = []
    monkeypatch.setattr(
        hub, "_fetch", lambda dataset, hub_id, split: asked.append((hub_id, split)) or []
    )
    assert loader("rocov2").load(hub_id=True, split="valid").samples == []
    assert asked == [("eltorio/ROCOv2-radiology", "validation")]
    with pytest.raises(MedFMRobustError, match="no option 'hub_id'"):
        loader("isic2016").load(hub_id="x/y")


def test_a_hub_source_without_the_datasets_package_says_how_to_get_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MedFMRobustError, match="needs the Hugging Face `datasets` package"):
        loader("rocov2").load(hub_id=True)


@needs_datasets
def test_mecovqa_reads_hub_rows():
    import datasets
    from PIL import Image

    rows = datasets.Dataset.from_dict(
        {
            "id": ["h1", "h2"],
            "image": [Image.fromarray(fx.rgb_image(20, 40)), Image.fromarray(fx.rgb_image())],
            "image_name": ["x_ray--ChestX--p1--2d_none.png", "ct_00--A--b--z_1.png"],
            "sentence": ["the left lung", "the liver"],
            "bbox": [[0.1, 0.2, 0.5, 0.9], [0.5, 0.5, 0.5, 0.9]],
        }
    )
    result = loader("mecovqa_g_plus").load(hub_dataset=rows)
    (sample,) = result.samples
    assert sample.id == "h1" and sample.modality == "xray"
    assert sample.box == pytest.approx((4.0, 4.0, 20.0, 18.0))
    assert "degenerate" in reasons(result)["h2"]


def test_a_task_card_loads_its_dataset_through_the_registry(tmp_path):
    from medfm_robust_plugin.tasks import get_task

    fx.make_isic2016(tmp_path)
    result = get_task("MedFMRobust-Seg-ISIC2016").load(tmp_path)
    assert [s.id for s in result.samples] == ["ISIC_0000001"]
    assert len(result.skipped) == 4


def test_png_reads_cleanly_after_decord_brings_its_old_zlib(tmp_path):
    """VLMEvalKit imports decord, whose bundled zlib 1.2.3 breaks OpenCV's PNG reader ("libpng
    error: bad parameters to zlib" on stderr): PNGs are then read by PIL, silently and exactly."""
    import subprocess
    import sys

    pytest.importorskip("decord")
    image = fx.rgb_image(seed=5)
    fx.write(tmp_path / "a.png", image)
    code = (
        "import decord, sys, numpy as np\n"
        "from medfm_robust_plugin import load_image\n"
        f"array = load_image({str(tmp_path / 'a.png')!r}).array\n"
        f"np.save({str(tmp_path / 'a.npy')!r}, array)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "libpng" not in done.stderr
    assert np.array_equal(np.load(tmp_path / "a.npy"), image)
