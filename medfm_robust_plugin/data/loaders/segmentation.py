"""2-D segmentation datasets stored as image files with mask files: ISIC 2016, BUSI, Kvasir-SEG,
REFUGE, and ``image_folder`` for your own data.

Each sample holds its image path, its mask (the mask file, or a function where the file needs
converting: JPEG masks are thresholded, several masks merged, grey levels selected) and the tight
box of the mask as the box prompt. Items are paired by file name; an image without its mask, a
mask without its image, a mask of another size and an empty mask are skipped with the reason.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import ImageSource, Skipped
from .base import FileDataset, Item, find_dir, find_dirs, layout_error, natural_key
from .checks import segmentation_item
from .sources import grey_level_mask, thresholded_mask, union_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
JPEG_MASK_THRESHOLD = 127  # JPEG-compressed masks ring around 0 and 255; cut in the middle


def files_by_stem(folder: Path | None, suffixes: Iterable[str] = IMAGE_SUFFIXES) -> dict[str, Path]:
    if folder is None or not folder.is_dir():
        return {}
    ends = tuple(suffixes)
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in ends}


def mask_source(path: Path, threshold: float | None = None) -> ImageSource:
    """The mask file itself when its non-zero pixels are the foreground, else a thresholding reader."""
    if threshold is None:
        threshold = JPEG_MASK_THRESHOLD if path.suffix.lower() in (".jpg", ".jpeg") else 0
    return path if threshold == 0 else functools.partial(thresholded_mask, path, threshold)


class ISIC2016(FileDataset):
    """ISIC 2016 (Gutman et al., ISBI 2016), Part 1: lesion segmentation in dermoscopy."""

    name = "isic2016"
    kinds = ("segmentation",)
    modality = "dermoscopy"
    description = (
        "ISIC 2016 Part 1: 900 training and 379 test dermoscopy images with binary lesion masks "
        "(ISIC_<id>.jpg and ISIC_<id>_Segmentation.png)."
    )
    access = (
        "challenge.isic-archive.com/data (2016 section): ISBI2016_ISIC_Part1_Training_Data.zip, "
        "..._Training_GroundTruth.zip, ..._Test_Data.zip, ..._Test_GroundTruth.zip; free "
        "download under the ISIC archive's terms of use."
    )
    layout = (
        "ISBI2016_ISIC_Part1_{Training,Test}_Data/ISIC_<id>.jpg and "
        "ISBI2016_ISIC_Part1_{Training,Test}_GroundTruth/ISIC_<id>_Segmentation.png"
    )
    splits = ("train", "test")
    default_split = "test"
    split_aliases: ClassVar[dict[str, str]] = {"training": "train"}
    FOLDERS: ClassVar[dict[str, str]] = {"train": "Training", "test": "Test"}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        chosen = [s for s in self.splits if self.wants(s, opts)]
        found = False
        for split in chosen:
            part = self.FOLDERS[split]
            image_dir = find_dir(root, f"ISBI2016_ISIC_Part1_{part}_Data")
            mask_dir = find_dir(root, f"ISBI2016_ISIC_Part1_{part}_GroundTruth")
            if image_dir is None and mask_dir is None:
                continue
            if image_dir is None or mask_dir is None:
                missing = (
                    f"ISBI2016_ISIC_Part1_{part}_{'Data' if image_dir is None else 'GroundTruth'}"
                )
                raise layout_error(
                    self.name, root, f"{self.layout} (the folder {missing} is missing)"
                )
            found = True
            images = {
                stem: path
                for stem, path in files_by_stem(image_dir, (".jpg", ".jpeg", ".png")).items()
                if not stem.endswith("_superpixels")  # ISIC's superpixel maps are not images
            }
            masks = {
                p.stem[: -len("_Segmentation")]: p
                for p in files_by_stem(mask_dir, (".png",)).values()
                if p.stem.endswith("_Segmentation")
            }
            for stem in sorted(set(images) | set(masks), key=natural_key):
                mask = masks.get(stem)
                yield segmentation_item(
                    dataset=self.name,
                    sample_id=stem,
                    modality=self.modality,
                    image=images.get(stem, image_dir / f"{stem}.jpg"),
                    mask=mask,
                    mask_files=[mask] if mask else [],
                    data_root=opts["data_root"],
                    root=root,
                    meta={"split": split},
                )
        if not found:
            raise layout_error(self.name, root, self.layout)


class BUSI(FileDataset):
    """BUSI (Al-Dhabyani et al., Data in Brief 2020): breast ultrasound with lesion masks."""

    name = "busi"
    kinds = ("segmentation",)
    modality = "ultrasound"
    description = (
        "Breast Ultrasound Images (BUSI): 780 images in benign, malignant and normal folders; "
        "'name (k).png' with 'name (k)_mask.png' (and '_mask_1.png'... for further lesions, merged "
        "into one mask). Normal images have no lesion and are skipped."
    )
    access = (
        "scholar.cu.edu.eg/?q=afahmy/pages/dataset (Dataset_BUSI_with_GT.zip), also on Kaggle "
        "('aryashah2k/breast-ultrasound-images-dataset', login needed; licence as stated there); "
        "cite the Data in Brief paper."
    )
    layout = (
        "Dataset_BUSI_with_GT/{benign,malignant,normal}/'<class> (k).png' with "
        "'<class> (k)_mask.png' (and '_mask_1.png' ...)"
    )
    CLASSES = ("benign", "malignant", "normal")
    MASK_NAME = re.compile(r"^(?P<base>.+?)_mask(?:_\d+)?$")

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        base = find_dir(root, "Dataset_BUSI_with_GT") or root
        folders = {c: base / c for c in self.CLASSES if (base / c).is_dir()}
        if not folders:
            raise layout_error(self.name, root, self.layout)
        for label, folder in folders.items():
            images: dict[str, Path] = {}
            masks: dict[str, list[Path]] = {}
            for path in files_by_stem(folder, (".png",)).values():
                match = self.MASK_NAME.match(path.stem)
                if match:
                    masks.setdefault(match["base"], []).append(path)
                else:
                    images[path.stem] = path
            for stem in sorted(set(images) | set(masks), key=natural_key):
                image = images.get(stem, folder / f"{stem}.png")
                yield self._item(label, stem, image, masks, root, opts)

    def _item(self, label: str, stem: str, image: Path, masks, root: Path, opts) -> Item:
        number = re.search(r"\((\d+)\)\s*$", stem)
        sample_id = f"{label}_{number.group(1)}" if number else re.sub(r"\W+", "_", stem)
        if label == "normal":
            return Skipped(sample_id, "normal case: no lesion, so nothing to segment")
        files = sorted(masks.get(stem, []), key=lambda p: natural_key(p.stem))
        mask = files[0] if len(files) == 1 else functools.partial(union_mask, files)
        return segmentation_item(
            dataset=self.name,
            sample_id=sample_id,
            modality=self.modality,
            image=image,
            mask=mask,
            mask_files=files,
            data_root=opts["data_root"],
            root=root,
            meta={"label": label, "file": image.name, "lesion_masks": len(files)},
        )


class KvasirSEG(FileDataset):
    """Kvasir-SEG (Jha et al., MMM 2020): colonoscopy polyps with masks and boxes."""

    name = "kvasir_seg"
    kinds = ("segmentation",)
    modality = "endoscopy"
    description = (
        "Kvasir-SEG: 1,000 colonoscopy frames with polyp masks (images/ and masks/ with the same "
        "file names, JPEG) and kavsir_bboxes.json. HyperKvasir's segmented-images folder (same "
        "layout, bounding-boxes.json) reads the same way."
    )
    access = (
        "datasets.simula.no/kvasir-seg (kvasir-seg.zip, free download for research and "
        "education; cite Jha et al. 2020)."
    )
    layout = "Kvasir-SEG/images/<id>.jpg, Kvasir-SEG/masks/<id>.jpg and kavsir_bboxes.json"
    BOX_FILES = ("kavsir_bboxes.json", "bounding-boxes.json")

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        folder = next(
            (d.parent for d in find_dirs(root, "images") if (d.parent / "masks").is_dir()), None
        )
        if folder is None:
            raise layout_error(self.name, root, self.layout)
        images = files_by_stem(folder / "images")
        masks = files_by_stem(folder / "masks")
        boxes = _polyp_boxes(folder, self.BOX_FILES)
        for stem in sorted(set(images) | set(masks), key=natural_key):
            mask = masks.get(stem)
            meta = {"polyp_boxes": boxes[stem]} if stem in boxes else {}
            yield segmentation_item(
                dataset=self.name,
                sample_id=stem,
                modality=self.modality,
                image=images.get(stem, folder / "images" / f"{stem}.jpg"),
                mask=mask_source(mask) if mask else None,
                mask_files=[mask] if mask else [],
                data_root=opts["data_root"],
                root=root,
                meta=meta,
            )


def _polyp_boxes(folder: Path, names: Iterable[str]) -> dict[str, list[list[float]]]:
    """The release's own boxes: id -> [[xmin, ymin, xmax, ymax], ...] (kept as metadata)."""
    for name in names:
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                return {}
            return {
                key: [[b["xmin"], b["ymin"], b["xmax"], b["ymax"]] for b in value.get("bbox", [])]
                for key, value in data.items()
                if isinstance(value, dict)
            }
    return {}


class REFUGE(FileDataset):
    """REFUGE (Orlando et al., MedIA 2020): fundus photographs with optic disc and cup masks."""

    name = "refuge"
    kinds = ("segmentation",)
    modality = "fundus"
    description = (
        "REFUGE: 1,200 fundus photographs (400 training, 400 validation, 400 test) with disc/cup "
        "masks in BMP, where grey 0 is the cup, 128 the rest of the disc and 255 the background. "
        "The target is the optic disc including the cup (target='cup' for the cup alone)."
    )
    access = (
        "refuge.grand-challenge.org: register and accept the challenge's data terms, then "
        "download REFUGE-Training400, Annotation-Training400, REFUGE-Validation400(-GT) and "
        "REFUGE-Test400 / REFUGE-Test-GT."
    )
    layout = (
        "Training400/{Glaucoma,Non-Glaucoma}/<g|n>NNNN.jpg, REFUGE-Validation400/VNNNN.jpg, "
        "Test400/TNNNN.jpg with the masks in .../Disc_Cup_Masks/.../<same name>.bmp"
    )
    splits = ("train", "validation", "test")
    default_split = "test"
    split_aliases: ClassVar[dict[str, str]] = {
        "val": "validation",
        "valid": "validation",
        "training": "train",
    }
    options: ClassVar[dict[str, Any]] = {"target": "disc"}
    # The disc is drawn grey (128) around the black (0) cup on white: select below these levels.
    TARGET_BELOW: ClassVar[dict[str, int]] = {"disc": 192, "cup": 64}
    SPLIT_OF_PREFIX: ClassVar[dict[str, str]] = {
        "g": "train",
        "n": "train",
        "v": "validation",
        "t": "test",
    }

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        below = self.TARGET_BELOW.get(opts["target"])
        if below is None:
            raise MedFMRobustError(f"dataset '{self.name}': target must be 'disc' or 'cup'")
        masks = {p.stem: p for p in sorted(root.rglob("*.bmp")) if "Disc_Cup_Masks" in p.parts}
        images = {
            p.stem: p
            for p in sorted(root.rglob("*.jpg"))
            if "Disc_Cup_Masks" not in p.parts and p.stem[:1].lower() in self.SPLIT_OF_PREFIX
        }
        if not masks and not images:
            raise layout_error(self.name, root, self.layout)
        stems = [
            s
            for s in set(images) | set(masks)
            if self.wants(self.SPLIT_OF_PREFIX.get(s[:1].lower(), ""), opts)
        ]
        for stem in sorted(stems, key=natural_key):
            mask = masks.get(stem)
            yield segmentation_item(
                dataset=self.name,
                sample_id=stem,
                modality=self.modality,
                image=images.get(stem, root / f"{stem}.jpg"),
                mask=functools.partial(grey_level_mask, mask, below) if mask else None,
                mask_files=[mask] if mask else [],
                data_root=opts["data_root"],
                root=root,
                meta={
                    "split": self.SPLIT_OF_PREFIX.get(stem[:1].lower()),
                    "target": opts["target"],
                    "glaucoma": _glaucoma(mask or images.get(stem)),
                },
            )


def _glaucoma(path: Path | None) -> bool | None:
    """REFUGE files its training and test masks under Glaucoma/Non-Glaucoma (or G/N) folders."""
    parts = set(path.parts) if path else set()
    if parts & {"Glaucoma", "G"}:
        return True
    if parts & {"Non-Glaucoma", "N"}:
        return False
    return None


class ImageFolder(FileDataset):
    """``image_folder``: your own images and masks, paired by file name."""

    name = "image_folder"
    kinds = ("segmentation",)
    modality = None
    description = (
        "Your own segmentation data: images/ and masks/ folders whose files pair by name "
        "(optionally with a mask suffix such as '_mask'); the modality is an option."
    )
    access = "Your own data."
    layout = "images/<name>.<ext> and masks/<name>.<ext> or masks/<name>_mask.<ext>"
    options: ClassVar[dict[str, Any]] = {
        "modality": "other",
        "images": "images",
        "masks": "masks",
        "mask_suffix": None,  # None: the image's own name, or it with one of MASK_SUFFIXES
        "threshold": None,
    }
    # What a mask's name adds to its image's when no mask_suffix is given (the usual spellings).
    MASK_SUFFIXES: ClassVar[tuple[str, ...]] = (
        "_mask",
        "-mask",
        "_masks",
        "_seg",
        "_segmentation",
        "_label",
        "_gt",
    )

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        image_dir, mask_dir = root / opts["images"], root / opts["masks"]
        if not image_dir.is_dir() or not mask_dir.is_dir():
            raise layout_error(
                self.name, root, f"the folders {opts['images']}/ and {opts['masks']}/"
            )
        images = files_by_stem(image_dir)
        masks = self._masks_by_image(files_by_stem(mask_dir), set(images), opts["mask_suffix"])
        for stem in sorted(set(images) | set(masks), key=natural_key):
            mask = masks.get(stem)
            yield segmentation_item(
                dataset=self.name,
                sample_id=stem,
                modality=str(opts["modality"]),
                image=images.get(stem, image_dir / f"{stem}.png"),
                mask=mask_source(mask, opts["threshold"]) if mask else None,
                mask_files=[mask] if mask else [],
                data_root=opts["data_root"],
                root=root,
            )

    def _masks_by_image(
        self, masks: dict[str, Path], images: set[str], suffix: str | None
    ) -> dict[str, Path]:
        """Each mask under the name of its image: ``<name><suffix>`` for a given suffix; else the
        image's own name, or it with one of ``MASK_SUFFIXES`` (``case_a_mask.png``)."""
        paired: dict[str, Path] = {}
        for path in masks.values():
            stem = path.stem
            if suffix is not None:
                if stem.endswith(suffix):
                    paired[stem[: len(stem) - len(suffix)]] = path
                continue
            if stem in images:
                paired.setdefault(stem, path)
                continue
            for ending in self.MASK_SUFFIXES:
                if stem.endswith(ending) and stem[: -len(ending)] in images:
                    paired.setdefault(stem[: -len(ending)], path)
                    break
            else:
                paired.setdefault(stem, path)  # a mask without its image: skipped with a reason
        return paired
