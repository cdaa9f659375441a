"""Tiny copies of each dataset in its released layout, written by code into a temporary folder.

Every builder returns the root to load and writes, next to a few good items, the bad items its
loader must skip: a missing image, a mask of the wrong size, an empty mask, a question without an
answer... Images are a few dozen pixels wide so that the whole suite loads in well under a second.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np

H, W = 24, 32  # the size of most fixture images (rows, columns)


# ---------------------------------------------------------------------- drawing


def rgb_image(height: int = H, width: int = W, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def rect_mask(
    y1: int, x1: int, y2: int, x2: int, height: int = H, width: int = W, value: int = 255
) -> np.ndarray:
    """A mask whose foreground is rows y1..y2-1 and columns x1..x2-1 (box x1, y1, x2, y2)."""
    mask = np.zeros((height, width), np.uint8)
    mask[y1:y2, x1:x2] = value
    return mask


def write(path: Path, array: np.ndarray) -> Path:
    """Write an image with OpenCV (RGB given, BGR stored); the suffix picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    assert cv2.imwrite(str(path), out), path
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def png_bytes(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    return encoded.tobytes()


# ---------------------------------------------------------------------- VQA, captions, reports


def make_omnimedvqa(tmp: Path) -> Path:
    """OmniMedVQA/: 2 usable open-access items, 3 bad ones, 1 restricted-access item."""
    base = tmp / "OmniMedVQA"
    write(base / "Images/ACRIMA/Im001_ACRIMA.png", rgb_image(seed=1))
    write(base / "Images/ACRIMA/Im002_ACRIMA.png", rgb_image(seed=2))
    write(base / "Images/BUSI/benign_1.png", rgb_image(seed=3))
    acrima = [
        {
            "dataset": "ACRIMA",
            "question_id": "ACRIMA_0001",
            "question_type": "Disease Diagnosis",
            "question": "Is there glaucoma in this image?",
            "gt_answer": "No, it's normal.",
            "image_path": "Images/ACRIMA/Im001_ACRIMA.png",
            "option_A": "Yes, it's glaucoma.",
            "option_B": "No, it's normal.",
            "modality_type": "Fundus Photography",
        },
        {  # the image file is not in the release copy
            "question_id": "ACRIMA_0002",
            "question": "Is there glaucoma?",
            "gt_answer": "Yes",
            "image_path": "Images/ACRIMA/Im999_ACRIMA.png",
            "option_A": "Yes",
            "option_B": "No",
            "modality_type": "Fundus Photography",
        },
        {  # no answer
            "question_id": "ACRIMA_0003",
            "question": "Which eye is shown?",
            "image_path": "Images/ACRIMA/Im002_ACRIMA.png",
            "option_A": "Left",
            "option_B": "Right",
            "modality_type": "Fundus Photography",
        },
        {  # the answer is none of the options
            "question_id": "ACRIMA_0004",
            "question": "What is the finding?",
            "gt_answer": "Cataract",
            "image_path": "Images/ACRIMA/Im002_ACRIMA.png",
            "option_A": "Glaucoma",
            "option_B": "Normal",
            "modality_type": "Fundus Photography",
        },
    ]
    busi = [
        {
            "question_id": "BUSI_0001",
            "question_type": "Disease Diagnosis",
            "question": "What does this breast ultrasound show?",
            "gt_answer": "malignant tumor.",
            "image_path": "Images/BUSI/benign_1.png",
            "option_A": "Normal tissue",
            "option_B": "Benign tumor",
            "option_C": "Malignant tumor",
            "option_D": "Cyst",
            "modality_type": "Ultrasound",
        }
    ]
    write_text(base / "QA_information/Open-access/ACRIMA.json", json.dumps(acrima))
    write_text(base / "QA_information/Open-access/BUSI.json", json.dumps(busi))
    restricted = [
        {
            "question_id": "Chest_CT_0001",
            "question": "Which organ is abnormal?",
            "gt_answer": "Lung",
            "image_path": "${dataset_root_path}/ChestCT/case1.png",
            "option_A": "Lung",
            "option_B": "Heart",
            "modality_type": "CT(Computed Tomography)",
        }
    ]
    write_text(base / "QA_information/Restricted-access/ChestCT.json", json.dumps(restricted))
    write(tmp / "sources/ChestCT/case1.png", rgb_image(seed=4))
    return tmp


def make_rocov2(tmp: Path) -> Path:
    """ROCOv2 test split: 2 good captions (CT and 'other'), an empty caption, a missing image."""
    ids = [f"ROCOv2_2023_test_{k:06d}" for k in range(1, 5)]
    for k, sample_id in enumerate(ids[:3]):
        write(tmp / "test_images/test" / f"{sample_id}.jpg", rgb_image(seed=k))
    write_csv(
        tmp / "test_captions.csv",
        [
            {"ID": ids[0], "Caption": "Axial CT showing a hepatic lesion."},
            {"ID": ids[1], "Caption": "Chest radiograph with a nodule."},
            {"ID": ids[2], "Caption": ""},
            {"ID": ids[3], "Caption": "MRI of the knee."},
        ],
    )
    write_csv(tmp / "test_concepts_manual.csv", [{"ID": ids[0], "CUIs": "C0040405"}])
    write_csv(
        tmp / "test_concepts.csv",
        [{"ID": ids[0], "CUIs": "C0040405;C0023884"}, {"ID": ids[1], "CUIs": "C0817096"}],
    )
    write_csv(tmp / "cui_mapping.csv", [{"CUI": "C0040405", "Canonical name": "X-Ray CT"}])
    return tmp


def make_iu_xray_r2gen(tmp: Path) -> Path:
    """R2Gen's iu_xray: annotation.json with train/val/test; one good test study, two bad ones."""
    for study in ("CXR1_1_IM-0001", "CXR10_IM-0002", "CXR2_IM-0652"):
        for view in (0, 1):
            if study == "CXR10_IM-0002":
                continue  # this study's images are missing
            write(tmp / "images" / study / f"{view}.png", rgb_image(seed=view)[..., 0])
    entry = {"image_path": ["CXR1_1_IM-0001/0.png", "CXR1_1_IM-0001/1.png"]}
    annotation = {
        "train": [
            {
                "id": "CXR2_IM-0652",
                "report": "Normal chest.",
                "split": "train",
                "image_path": ["CXR2_IM-0652/0.png", "CXR2_IM-0652/1.png"],
            },
        ],
        "val": [],
        "test": [
            {
                "id": "CXR1_1_IM-0001",
                "report": "The heart is normal in size.",
                "split": "test",
                **entry,
            },
            {
                "id": "CXR10_IM-0002",
                "report": "No acute disease.",
                "split": "test",
                "image_path": ["CXR10_IM-0002/0.png"],
            },
            {"id": "CXR3_IM-1384", "report": "", "split": "test", **entry},
        ],
    }
    write_text(tmp / "annotation.json", json.dumps(annotation))
    return tmp


OPENI_REPORT = """<?xml version="1.0" encoding="utf-8"?>
<eCitation>
  <MedlineCitation Owner="Indiana University" Status="supplied">
    <Article PubModel="Electronic">
      <Abstract>
        <AbstractText Label="COMPARISON">None.</AbstractText>
        <AbstractText Label="INDICATION">Chest pain.</AbstractText>
        <AbstractText Label="FINDINGS">{findings}</AbstractText>
        <AbstractText Label="IMPRESSION">{impression}</AbstractText>
      </Abstract>
    </Article>
  </MedlineCitation>
  {images}
</eCitation>
"""


def make_iu_xray_openi(tmp: Path) -> Path:
    """Open-i: reports 1 (good), 2 (no findings/impression text), 3 (its image is missing)."""

    def report(number: int, findings: str, impression: str, images: list[str]) -> None:
        tags = "\n  ".join(
            f'<parentImage id="{i}"><figureId>F1</figureId></parentImage>' for i in images
        )
        text = OPENI_REPORT.format(findings=findings, impression=impression, images=tags)
        write_text(tmp / "ecgen-radiology" / f"{number}.xml", text)

    report(
        1,
        "The lungs are clear.",
        "No acute disease.",
        ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"],
    )
    report(2, "", "", ["CXR2_IM-0652-1001"])
    report(3, "Cardiomegaly.", "Enlarged heart.", ["CXR3_IM-1384-1001"])
    for name in ("CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001", "CXR2_IM-0652-1001"):
        write(tmp / "NLMCXR_png" / f"{name}.png", rgb_image(seed=1)[..., 0])
    return tmp


def make_iu_xray_kaggle(tmp: Path) -> Path:
    """Kaggle copy: study 1 (frontal + lateral), study 2 (no projection row)."""
    write_csv(
        tmp / "indiana_reports.csv",
        [
            {
                "uid": "1",
                "MeSH": "normal",
                "Problems": "normal",
                "image": "Xray Chest PA and Lateral",
                "indication": "",
                "comparison": "",
                "findings": "The heart is normal.",
                "impression": "Normal chest x-XXXX.",
            },
            {
                "uid": "2",
                "MeSH": "",
                "Problems": "",
                "image": "",
                "indication": "",
                "comparison": "",
                "findings": "Clear lungs.",
                "impression": "",
            },
        ],
    )
    write_csv(
        tmp / "indiana_projections.csv",
        [
            {"uid": "1", "filename": "1_IM-0001-4001.dcm.png", "projection": "Lateral"},
            {"uid": "1", "filename": "1_IM-0001-3001.dcm.png", "projection": "Frontal"},
        ],
    )
    for name in ("1_IM-0001-4001.dcm.png", "1_IM-0001-3001.dcm.png"):
        write(tmp / "images/images_normalized" / name, rgb_image(seed=2)[..., 0])
    return tmp


# ---------------------------------------------------------------------- grounding


def make_mecovqa(tmp: Path) -> Path:
    """MeCoVQA-G-Plus test/train files in both record shapes, with four kinds of bad record."""
    write(tmp / "images/ct_00--AbdomenCT1K--Case_00220--z_0001.png", rgb_image(20, 40, seed=1))
    write(tmp / "images/mr_t1--BraTS--case7--z_0040.png", rgb_image(30, 30, seed=2)[..., 0])
    write(tmp / "images/ultrasound_00--busi--b1--2d_none.png", rgb_image(H, W, seed=3))
    write(tmp / "masks/us_b1_mask.png", rect_mask(4, 6, 10, 20))
    write(tmp / "masks/us_small_mask.png", rect_mask(1, 1, 3, 3, height=10, width=10))

    def talk(question: str, answer: str) -> list[dict]:
        return [
            {"from": "human", "value": f"<image>\n{question}"},
            {"from": "gpt", "value": answer},
        ]

    test = [
        {
            "id": "g1",
            "image": "images/ct_00--AbdomenCT1K--Case_00220--z_0001.png",
            "conversations": talk(
                "Where is the liver?", "The liver is at [0.25, 0.25, 0.75, 0.5]."
            ),
        },
        {
            "id": "g2",
            "image": "images/mr_t1--BraTS--case7--z_0040.png",
            "sentence": "the tumour core",
            "bbox": [2, 3, 12, 13],
            "width": 30,
            "height": 30,
        },
        {
            "id": "g3",
            "image": "images/ultrasound_00--busi--b1--2d_none.png",
            "conversations": talk(
                "Segment the breast lesion.", "It is <SEG>.<mask>masks/us_b1_mask.png</mask>"
            ),
        },
        {"id": "g4", "image": "images/missing.png", "sentence": "anything", "bbox": [1, 1, 5, 5]},
        {
            "id": "g5",
            "image": "images/mr_t1--BraTS--case7--z_0040.png",
            "sentence": "a line",
            "bbox": [5, 5, 5, 9],
        },
        {"id": "g6", "image": "images/mr_t1--BraTS--case7--z_0040.png", "bbox": [1, 1, 5, 5]},
        {
            "id": "g7",
            "image": "images/ultrasound_00--busi--b1--2d_none.png",
            "conversations": talk("Segment the lesion.", "<mask>masks/us_small_mask.png</mask>"),
        },
    ]
    write_text(tmp / "MeCoVQA_Grounding_test.json", json.dumps(test))
    train = [
        {
            "id": "t1",
            "image": "images/mr_t1--BraTS--case7--z_0040.png",
            "sentence": "the ventricle",
            "bbox": [0.1, 0.1, 0.5, 0.5],
        }
    ]
    write_text(tmp / "MeCoVQA_Grounding_train.jsonl", "\n".join(json.dumps(r) for r in train))
    return tmp


# ---------------------------------------------------------------------- segmentation


def make_isic2016(tmp: Path) -> Path:
    """ISIC 2016 Part 1: test split with 1 good item and 4 bad ones; training with 1 good item."""
    test_data, test_gt = (
        tmp / "ISBI2016_ISIC_Part1_Test_Data",
        tmp / "ISBI2016_ISIC_Part1_Test_GroundTruth",
    )
    for k in (1, 2, 3, 4):
        write(test_data / f"ISIC_000000{k}.jpg", rgb_image(seed=k))
    write(test_gt / "ISIC_0000001_Segmentation.png", rect_mask(5, 8, 15, 20))
    write(test_gt / "ISIC_0000002_Segmentation.png", rect_mask(5, 8, 15, 20, height=H + 2))
    write(test_gt / "ISIC_0000003_Segmentation.png", np.zeros((H, W), np.uint8))
    write(test_gt / "ISIC_0000005_Segmentation.png", rect_mask(1, 1, 4, 4))  # its image is missing
    train = tmp / "ISBI2016_ISIC_Part1_Training_Data"
    write(train / "ISIC_0000100.jpg", rgb_image(seed=9))
    write(
        tmp / "ISBI2016_ISIC_Part1_Training_GroundTruth/ISIC_0000100_Segmentation.png",
        rect_mask(0, 0, 3, 5),
    )
    return tmp


def make_busi(tmp: Path) -> Path:
    """Dataset_BUSI_with_GT: a two-mask lesion, a wrong-size mask, a missing mask, an empty mask,
    a mask without image and a normal case."""
    base = tmp / "Dataset_BUSI_with_GT"
    write(base / "benign/benign (1).png", rgb_image(seed=1))
    write(base / "benign/benign (1)_mask.png", rect_mask(2, 2, 6, 8))
    write(base / "benign/benign (1)_mask_1.png", rect_mask(10, 20, 14, 30))
    write(base / "benign/benign (2).png", rgb_image(seed=2))
    write(base / "benign/benign (2)_mask.png", rect_mask(2, 2, 6, 8, width=W + 4))
    write(base / "benign/benign (10).png", rgb_image(seed=10))
    write(base / "benign/benign (10)_mask.png", rect_mask(0, 0, 24, 32))
    write(base / "benign/benign (3).png", rgb_image(seed=3))  # no mask
    write(base / "malignant/malignant (1).png", rgb_image(seed=4))
    write(base / "malignant/malignant (1)_mask.png", np.zeros((H, W), np.uint8))
    write(base / "malignant/malignant (2)_mask.png", rect_mask(2, 2, 6, 8))  # no image
    write(base / "normal/normal (1).png", rgb_image(seed=5))
    write(base / "normal/normal (1)_mask.png", np.zeros((H, W), np.uint8))
    return tmp


def make_kvasir(tmp: Path) -> Path:
    """Kvasir-SEG with JPEG masks: a good polyp, an empty mask, a mask without its frame."""
    base = tmp / "kvasir-seg/Kvasir-SEG"
    write(base / "images/cju0qkwl35piu0993l0dewei2.jpg", rgb_image(seed=1))
    write(base / "masks/cju0qkwl35piu0993l0dewei2.jpg", rect_mask(4, 6, 16, 22))
    write(base / "images/cju0qoxqj9q6s0835b43399p4.jpg", rgb_image(seed=2))
    write(base / "masks/cju0qoxqj9q6s0835b43399p4.jpg", np.zeros((H, W), np.uint8))
    write(base / "masks/cju0sr5ghl0nd08789uzf1raf.jpg", rect_mask(1, 1, 5, 5))
    boxes = {
        "cju0qkwl35piu0993l0dewei2": {
            "height": H,
            "width": W,
            "bbox": [{"label": "polyp", "xmin": 6, "ymin": 4, "xmax": 22, "ymax": 16}],
        }
    }
    write_text(base / "kavsir_bboxes.json", json.dumps(boxes))
    return tmp


def refuge_mask(height: int = H, width: int = W) -> np.ndarray:
    """REFUGE grey levels: 255 background, 128 disc rim, 0 cup (inside the disc)."""
    mask = np.full((height, width), 255, np.uint8)
    mask[4:16, 6:20] = 128  # disc: x 6..19, y 4..15
    mask[8:12, 10:15] = 0  # cup: x 10..14, y 8..11
    return mask


def make_refuge(tmp: Path) -> Path:
    """REFUGE: one training, one validation and three test images (one good) + a stray mask."""
    write(tmp / "Training400/Glaucoma/g0001.jpg", rgb_image(seed=1))
    write(tmp / "Annotation-Training400/Disc_Cup_Masks/Glaucoma/g0001.bmp", refuge_mask())
    write(tmp / "REFUGE-Validation400/V0001.jpg", rgb_image(seed=2))
    write(tmp / "REFUGE-Validation400-GT/Disc_Cup_Masks/V0001.bmp", refuge_mask())
    write(tmp / "Test400/T0001.jpg", rgb_image(seed=3))
    write(tmp / "REFUGE-Test-GT/Disc_Cup_Masks/N/T0001.bmp", refuge_mask())
    write(tmp / "Test400/T0002.jpg", rgb_image(seed=4))
    write(tmp / "REFUGE-Test-GT/Disc_Cup_Masks/G/T0002.bmp", refuge_mask(height=H + 8))
    write(tmp / "Test400/T0003.jpg", rgb_image(seed=5))
    write(tmp / "REFUGE-Test-GT/Disc_Cup_Masks/N/T0003.bmp", np.full((H, W), 255, np.uint8))
    write(tmp / "REFUGE-Test-GT/Disc_Cup_Masks/N/T0004.bmp", refuge_mask())  # no image
    return tmp


def monuseg_xml(outlines: list[list[tuple[float, float]]]) -> str:
    regions = []
    for number, points in enumerate(outlines, start=1):
        vertices = "".join(f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in points)
        regions.append(f'<Region Id="{number}" Type="0"><Vertices>{vertices}</Vertices></Region>')
    return (
        '<?xml version="1.0"?><Annotations MicronsPerPixel="0.252"><Annotation Id="1">'
        f"<Regions>{''.join(regions)}</Regions></Annotation></Annotations>"
    )


SQUARE = [(4.0, 4.0), (10.0, 4.0), (10.0, 9.0), (4.0, 9.0)]  # fills x 4..10, y 4..9
TRIANGLE = [(20.0, 10.0), (28.0, 10.0), (24.0, 18.0)]


def make_monuseg(tmp: Path) -> Path:
    """MoNuSeg: a test tile with 2 good nuclei, a 2-vertex outline and one outside the tile;
    a test annotation whose tile is missing; a training tile with one nucleus."""
    test = tmp / "MoNuSegTestData/MoNuSegTestData"
    write(test / "TCGA-2Z-A9J9-01A-01-TS1.tif", rgb_image(seed=1))
    outlines = [
        SQUARE,
        TRIANGLE,
        [(1.0, 1.0), (3.0, 3.0)],
        [(100.0, 100.0), (110.0, 100.0), (105.0, 110.0)],
    ]
    write_text(test / "TCGA-2Z-A9J9-01A-01-TS1.xml", monuseg_xml(outlines))
    write_text(test / "TCGA-44-2665-01B-06-BS6.xml", monuseg_xml([SQUARE]))
    train = tmp / "MoNuSeg 2018 Training Data/MoNuSeg 2018 Training Data"
    write(train / "Tissue Images/TCGA-18-5592-01Z-00-DX1.tif", rgb_image(seed=2))
    write_text(train / "Annotations/TCGA-18-5592-01Z-00-DX1.xml", monuseg_xml([TRIANGLE]))
    return tmp


def make_brain_lgg(tmp: Path) -> Path:
    """Kaggle LGG: slice 1 with tumour, 2 with an empty mask, 3 with a wrong-size mask, 4 without image."""
    patient = tmp / "lgg-mri-segmentation/kaggle_3m/TCGA_CS_4941_19960909"
    stem = "TCGA_CS_4941_19960909"
    for k in (1, 2, 3):
        write(patient / f"{stem}_{k}.tif", rgb_image(seed=k))
    write(patient / f"{stem}_1_mask.tif", rect_mask(3, 5, 9, 12))
    write(patient / f"{stem}_2_mask.tif", np.zeros((H, W), np.uint8))
    write(patient / f"{stem}_3_mask.tif", rect_mask(3, 5, 9, 12, height=H * 2))
    write(patient / f"{stem}_4_mask.tif", rect_mask(3, 5, 9, 12))
    return tmp


def write_cjdata(path: Path, image: np.ndarray, mask: np.ndarray, label: int, pid: str) -> None:
    """A MATLAB v7.3 file as MATLAB writes it: HDF5, arrays stored column-major (transposed)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as mat:
        group = mat.create_group("cjdata")
        group["image"] = image.T
        group["tumorMask"] = mask.T.astype(np.uint8)
        group["label"] = np.array([[float(label)]])
        group["PID"] = np.array([[ord(c)] for c in pid], np.uint16)


def make_brain_figshare(tmp: Path) -> Path:
    """Figshare (Cheng et al.): 1.mat good, 2.mat empty mask, 3.mat mask of another size, 4.mat not HDF5."""
    folder = tmp / "brainTumorDataPublic_1-766"
    image = np.arange(H * W, dtype=np.int16).reshape(H, W) * 3
    write_cjdata(folder / "1.mat", image, rect_mask(2, 3, 10, 9) > 0, 2, "MR040")
    write_cjdata(folder / "2.mat", image, np.zeros((H, W), bool), 1, "MR041")
    write_cjdata(folder / "3.mat", image, np.ones((H // 2, W), bool), 3, "MR042")
    write_text(folder / "4.mat", "MATLAB 5.0 MAT-file, not HDF5")
    write_text(tmp / "cvind.mat", "fold indices")
    return tmp


def make_flare22(tmp: Path) -> Path:
    """FLARE22Train: case 1 (liver on slices 1-2, spleen on 3), 2 (label, no image),
    3 (shapes differ), 4 (no liver)."""
    import nibabel as nib

    base = tmp / "FLARE22Train"
    shape = (W, H, 5)  # x, y, z: slices are H x W after the transpose

    def save(path: Path, data: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.8, 2.5, 1.0])), str(path))

    hu = (np.arange(np.prod(shape)).reshape(shape) % 400 - 200).astype(np.int16)
    labels = np.zeros(shape, np.uint8)
    labels[5:15, 2:8, 1] = 1  # liver on slice 1: x 5..14, y 2..7
    labels[6:12, 3:9, 2] = 1
    labels[20:25, 10:20, 3] = 3  # spleen on slice 3
    save(base / "images/FLARE22_Tr_0001_0000.nii.gz", hu)
    save(base / "labels/FLARE22_Tr_0001.nii.gz", labels)
    save(base / "labels/FLARE22_Tr_0002.nii.gz", labels)
    save(base / "images/FLARE22_Tr_0003_0000.nii.gz", hu[:, :, :4])
    save(base / "labels/FLARE22_Tr_0003.nii.gz", labels)
    spleen_only = np.where(labels == 3, 3, 0).astype(np.uint8)
    save(base / "images/FLARE22_Tr_0004_0000.nii.gz", hu)
    save(base / "labels/FLARE22_Tr_0004.nii.gz", spleen_only)
    return tmp


def make_image_folder(tmp: Path) -> Path:
    """images/ + masks/ with a '_mask' suffix: one good pair, one without mask, one empty mask."""
    write(tmp / "images/case_a.png", rgb_image(seed=1))
    write(tmp / "masks/case_a_mask.png", rect_mask(2, 3, 7, 9))
    write(tmp / "images/case_b.png", rgb_image(seed=2))
    write(tmp / "images/case_c.png", rgb_image(seed=3))
    write(tmp / "masks/case_c_mask.png", np.zeros((H, W), np.uint8))
    return tmp


# ---------------------------------------------------------------------- tables


def make_qa_csv(tmp: Path) -> Path:
    """A CSV with letter columns: 2 good rows, a row without answer, one with a missing image."""
    write(tmp / "imgs/a.png", rgb_image(seed=1))
    write(tmp / "imgs/b.png", rgb_image(seed=2))
    rows = [
        {
            "id": "q1",
            "image": "imgs/a.png",
            "question": "Which modality?",
            "A": "CT",
            "B": "MRI",
            "C": "X-ray",
            "answer": "B",
            "modality": "MRI",
        },
        {
            "id": "q2",
            "image": "imgs/b.png",
            "question": "Is there a fracture?",
            "A": "yes",
            "B": "no",
            "C": "",
            "answer": "no",
            "modality": "X-ray",
        },
        {
            "id": "q3",
            "image": "imgs/b.png",
            "question": "Which side?",
            "A": "left",
            "B": "right",
            "C": "",
            "answer": "",
            "modality": "",
        },
        {
            "id": "q4",
            "image": "imgs/zzz.png",
            "question": "Anything?",
            "A": "a",
            "B": "b",
            "C": "",
            "answer": "A",
            "modality": "",
        },
    ]
    return write_csv(tmp / "questions.csv", rows)


def make_qa_jsonl(tmp: Path) -> Path:
    """A JSONL file with options as a list and a JSON string; one answer outside the options."""
    write(tmp / "data/img/x.png", rgb_image(seed=1))
    rows = [
        {
            "image": "img/x.png",
            "question": "Organ?",
            "options": ["liver", "spleen"],
            "answer": "spleen",
        },
        {
            "image": "img/x.png",
            "question": "Organ?",
            "options": json.dumps({"A": "kidney", "B": "lung"}),
            "answer": "A",
        },
        {
            "image": "img/x.png",
            "question": "Organ?",
            "options": ["liver", "spleen"],
            "answer": "heart",
        },
    ]
    return write_text(tmp / "data/qa.jsonl", "\n".join(json.dumps(r) for r in rows))


def make_vlmeval_tsv(tmp: Path) -> Path:
    """A VLMEvalKit MCQ TSV: base64 images, a row reusing row 0's image, a non-image cell,
    a row without answer."""
    image = base64.b64encode(png_bytes(rgb_image(seed=1)[..., ::-1])).decode()
    rows = [
        {
            "index": "0",
            "image": image,
            "question": "What is shown?",
            "A": "lung",
            "B": "brain",
            "C": "bone",
            "D": "",
            "answer": "B",
            "category": "MRI",
        },
        {
            "index": "1",
            "image": "0",
            "question": "Again?",
            "A": "yes",
            "B": "no",
            "C": "",
            "D": "",
            "answer": "A",
            "category": "CT",
        },
        {
            "index": "2",
            "image": base64.b64encode(b"not an image at all").decode(),
            "question": "Broken?",
            "A": "a",
            "B": "b",
            "C": "",
            "D": "",
            "answer": "A",
            "category": "",
        },
        {
            "index": "3",
            "image": image,
            "question": "No answer?",
            "A": "a",
            "B": "b",
            "C": "",
            "D": "",
            "answer": "",
            "category": "",
        },
    ]
    return write_csv(tmp / "MedBench.tsv", rows, delimiter="\t")


def hub_vqa_dataset():
    """A `datasets.Dataset` of two VQA rows with PIL images, in memory."""
    import datasets
    from PIL import Image

    images = [Image.fromarray(rgb_image(seed=s)) for s in (1, 2)]
    return datasets.Dataset.from_dict(
        {
            "img": images,
            "q": ["Which organ?", "Which side?"],
            "choices": [["liver", "spleen"], ["left", "right"]],
            "label": ["spleen", "up"],
            "uid": ["h1", "h2"],
        }
    )


def hub_rocov2_dataset(tmp: Path) -> Path:
    """The ROCOv2 hub schema (image, image_id, caption, cui) saved with save_to_disk."""
    import datasets

    encoded = png_bytes(rgb_image(seed=3))
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "image_id": datasets.Value("string"),
            "caption": datasets.Value("string"),
            "cui": datasets.Sequence(datasets.Value("string")),
        }
    )
    test = datasets.Dataset.from_dict(
        {
            "image": [{"bytes": encoded, "path": None}] * 2,
            "image_id": ["ROCOv2_2023_test_000001", "ROCOv2_2023_test_000002"],
            "caption": ["Ultrasound of the thyroid.", ""],
            "cui": [["C0041618"], []],
        },
        features=features,
    )
    validation = test.select([0])
    path = tmp / "rocov2_hub"
    datasets.DatasetDict({"test": test, "validation": validation}).save_to_disk(str(path))
    return path


def image_bytes_io(array: np.ndarray) -> io.BytesIO:
    return io.BytesIO(png_bytes(array))
