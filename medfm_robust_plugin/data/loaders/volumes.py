"""FLARE22 (Ma et al., Lancet Digital Health 2024): abdominal CT volumes with 13 organ labels,
served as 2-D axial slices in Hounsfield units.

Released layout (the 50 labelled training cases)::

    FLARE22Train/images/FLARE22_Tr_0001_0000.nii.gz   CT volume, HU
    FLARE22Train/labels/FLARE22_Tr_0001.nii.gz        labels 1..13

(nnU-Net copies name the folders imagesTr / labelsTr; both are read.) Each slice k along the
third voxel axis that shows the chosen organ becomes the sample ``<case>_slice<k>``; the slice is
given as rows = second voxel axis, columns = first (no reorientation to a display convention;
image and mask share it).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import MedFMRobustError
from ..sample import Sample, Skipped, mask_box
from .base import FileDataset, Item, find_dirs, layout_error, natural_key
from .sources import axial_slice, label_slice_mask, volume, volume_slice

NIFTI = ".nii.gz"
# FLARE22 label values (the challenge's data description).
ORGANS: dict[str, int] = {
    "liver": 1,
    "right_kidney": 2,
    "spleen": 3,
    "pancreas": 4,
    "aorta": 5,
    "inferior_vena_cava": 6,
    "right_adrenal_gland": 7,
    "left_adrenal_gland": 8,
    "gallbladder": 9,
    "esophagus": 10,
    "stomach": 11,
    "duodenum": 12,
    "left_kidney": 13,
}


def organ_labels(dataset: str, organ: Any) -> tuple[str, tuple[int, ...]]:
    """The organ's name and label values: a name, a label number, or 'all' (any organ)."""
    if str(organ).lower() == "all":
        return "all", tuple(ORGANS.values())
    key = str(organ).lower().replace(" ", "_").replace("-", "_")
    if key in ORGANS:
        return key, (ORGANS[key],)
    if key.isdigit() and int(key) in ORGANS.values():
        value = int(key)
        return next(n for n, v in ORGANS.items() if v == value), (value,)
    raise MedFMRobustError(
        f"dataset '{dataset}': unknown organ {organ!r}; use 'all', a label 1-13 or one of "
        f"{', '.join(ORGANS)}"
    )


class FLARE22(FileDataset):
    name = "flare22"
    kinds = ("segmentation",)
    modality = "ct"
    description = (
        "FLARE22: 50 labelled abdominal CT volumes (13 organs); one sample per axial slice that "
        "shows the chosen organ (option organ, default liver), image in HU."
    )
    access = (
        "flare22.grand-challenge.org: register and accept the challenge terms to download the "
        "labelled training cases (also mirrored on Zenodo, record 7860267: FLARE22 labelled set, "
        "research use, cite the MSD and AbdomenCT-1K papers)."
    )
    layout = "images/<case>_0000.nii.gz with labels/<case>.nii.gz (or imagesTr/ and labelsTr/)"
    options: ClassVar[dict[str, Any]] = {"organ": "liver", "slice_step": 1, "min_area": 1}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        organ, labels = organ_labels(self.name, opts["organ"])
        step, min_area = int(opts["slice_step"]), int(opts["min_area"])
        if step < 1 or min_area < 1:
            raise MedFMRobustError(f"dataset '{self.name}': slice_step and min_area must be >= 1")
        pairs = self._pairs(root)
        for case, image, label in pairs:
            for path, what in ((image, "image volume"), (label, "label volume")):
                if path is not None:
                    opts["data_root"].check(case, path, what)
            yield from self._case(case, image, label, organ, labels, step, min_area, root)

    def _pairs(self, root: Path) -> list[tuple[str, Path | None, Path | None]]:
        pairs: dict[str, tuple[Path | None, Path | None]] = {}
        for label_name, image_name in (("labels", "images"), ("labelsTr", "imagesTr")):
            for label_dir in find_dirs(root, label_name):
                image_dir = label_dir.parent / image_name
                for label in label_dir.glob(f"*{NIFTI}"):
                    case = label.name[: -len(NIFTI)]
                    image = next(
                        (
                            p
                            for p in (
                                image_dir / f"{case}_0000{NIFTI}",
                                image_dir / f"{case}{NIFTI}",
                            )
                            if p.is_file()
                        ),
                        None,
                    )
                    pairs[case] = (image, label)
                for image in image_dir.glob(f"*{NIFTI}") if image_dir.is_dir() else []:
                    case = image.name[: -len(NIFTI)].removesuffix("_0000")
                    pairs.setdefault(case, (image, None))
        if not pairs:
            raise layout_error(self.name, root, self.layout)
        return [(case, *pairs[case]) for case in sorted(pairs, key=natural_key)]

    def _case(self, case, image, label, organ, labels, step, min_area, root) -> Iterator[Item]:
        import nibabel as nib

        if label is None:
            yield Skipped(case, "no label volume for this image (unlabelled case)")
            return
        if image is None:
            yield Skipped(case, f"image volume is missing: images/{case}_0000{NIFTI}")
            return
        try:
            image_shape = nib.load(str(image)).shape
            annotation = volume(label)
        except Exception as exc:
            yield Skipped(case, f"volume cannot be read ({type(exc).__name__}: {exc})")
            return
        if tuple(image_shape) != annotation.shape or annotation.ndim != 3:
            yield Skipped(
                case,
                f"image volume {tuple(image_shape)} and label volume {annotation.shape} differ in shape",
            )
            return
        present = np.isin(annotation, labels)
        areas = present.sum(axis=(0, 1))
        chosen = [k for k in range(0, annotation.shape[2], step) if areas[k] >= min_area]
        if not chosen:
            yield Skipped(case, f"no slice shows the {organ}")
            return
        spacing = [float(z) for z in nib.load(str(label)).header.get_zooms()[:3]]
        for k in chosen:
            yield Sample(
                f"{case}_slice{k}",
                self.name,
                self.modality,
                functools.partial(volume_slice, image, k),
                mask=functools.partial(label_slice_mask, label, k, labels),
                box=mask_box(axial_slice(present, k)),
                meta={"case": case, "slice": k, "organ": organ, "spacing": spacing},
            )
