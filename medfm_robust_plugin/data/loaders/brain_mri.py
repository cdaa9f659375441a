"""Brain-tumour MRI segmentation: the Figshare release of Cheng et al., or the Kaggle LGG release.

- Figshare (Cheng et al., PLoS ONE 2015; figshare 1512427): 3,064 T1-weighted contrast-enhanced
  slices of 233 patients (meningioma, glioma, pituitary tumour), one MATLAB v7.3 file per slice
  (``1.mat`` .. ``3064.mat``, in four zip parts) holding the struct ``cjdata`` with ``image``
  (int16), ``tumorMask``, ``tumorBorder``, ``label`` (1, 2, 3) and ``PID``. MATLAB v7.3 files are
  HDF5, read with ``h5py`` (an optional dependency: ``pip install h5py``).
- Kaggle LGG (Buda et al., Comput Biol Med 2019; "lgg-mri-segmentation"): 110 patients of TCIA
  LGG, ``kaggle_3m/<patient>/<patient>_<k>.tif`` (3 channels: pre-contrast, FLAIR,
  post-contrast) with ``<patient>_<k>_mask.tif``; slices without tumour have empty masks and are
  skipped.

``release='auto'`` (the default) reads whichever of the two the root holds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import MedFMRobustError
from ..sample import Sample, Skipped, mask_box
from .base import FileDataset, Item, layout_error, natural_key
from .checks import segmentation_item
from .sources import mat_field, mat_mask

TUMOUR_TYPES = {1: "meningioma", 2: "glioma", 3: "pituitary tumour"}
RELEASES = ("auto", "figshare", "lgg")


class BrainTumorMRI(FileDataset):
    name = "brain_tumor_mri"
    kinds = ("segmentation",)
    modality = "mri"
    description = (
        "Brain-tumour MRI segmentation on 2-D slices: the Figshare release of Cheng et al. "
        "(3,064 contrast-enhanced T1 slices, .mat v7.3, needs h5py) or the Kaggle LGG release of "
        "Buda et al. (.tif slices with _mask.tif)."
    )
    access = (
        "Figshare: figshare.com/articles/dataset/brain_tumor_dataset/1512427 (four zip parts, "
        "CC BY 4.0, free download). Kaggle LGG: kaggle.com/datasets/mateuszbuda/"
        "lgg-mri-segmentation (Kaggle login; from TCIA's TCGA-LGG collection, whose data usage "
        "policy applies)."
    )
    layout = (
        "<n>.mat files with the cjdata struct (Figshare, Cheng et al.), or "
        "kaggle_3m/<patient>/<patient>_<k>.tif with <patient>_<k>_mask.tif (Kaggle LGG)"
    )
    options: ClassVar[dict[str, Any]] = {"release": "auto"}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        release = opts["release"]
        if release not in RELEASES:
            raise MedFMRobustError(
                f"dataset '{self.name}': release must be one of {', '.join(RELEASES)}"
            )
        mats = (
            sorted((p for p in root.rglob("*.mat") if p.stem.isdigit()), key=lambda p: int(p.stem))
            if release in ("auto", "figshare")
            else []
        )
        if mats:
            yield from self._figshare(mats, root, opts)
            return
        masks = sorted(root.rglob("*_mask.tif")) if release in ("auto", "lgg") else []
        if not masks:
            raise layout_error(self.name, root, self.layout)
        yield from self._lgg(masks, root, opts)

    # ------------------------------------------------------------------ Figshare

    def _figshare(self, mats: list[Path], root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        try:
            import h5py
        except ImportError:
            raise MedFMRobustError(
                f"dataset '{self.name}': the Figshare release under '{root}' is MATLAB v7.3 (HDF5); "
                "reading it needs h5py: pip install h5py"
            ) from None
        for path in mats:
            opts["data_root"].check(path.stem, path, "MATLAB file")
            yield self._figshare_item(h5py, path)

    def _figshare_item(self, h5py: Any, path: Path) -> Item:
        sample_id = path.stem
        try:
            with h5py.File(path, "r") as mat:
                struct = mat["cjdata"]
                image_shape = tuple(reversed(struct["image"].shape))
                mask = np.asarray(struct["tumorMask"]).T > 0
                label = int(np.asarray(struct["label"]).ravel()[0])
                patient = "".join(chr(int(c)) for c in np.asarray(struct["PID"]).ravel())
        except Exception as exc:
            return Skipped(
                sample_id,
                f"{path.name} cannot be read as a MATLAB v7.3 cjdata file ({type(exc).__name__}: {exc})",
            )
        if mask.shape != image_shape:
            return Skipped(
                sample_id,
                f"tumorMask is {mask.shape[1]}x{mask.shape[0]} pixels but the image is "
                f"{image_shape[1]}x{image_shape[0]}",
            )
        box = mask_box(mask)
        if box is None:
            return Skipped(sample_id, "mask is empty: no foreground pixel to segment")
        return Sample(
            sample_id,
            self.name,
            self.modality,
            functools.partial(mat_field, path, "cjdata", "image"),
            mask=functools.partial(mat_mask, path, "cjdata", "tumorMask"),
            box=box,
            meta={
                "tumour": TUMOUR_TYPES.get(label, str(label)),
                "patient": patient,
                "release": "figshare",
            },
        )

    # ------------------------------------------------------------------ Kaggle LGG

    def _lgg(self, masks: list[Path], root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        by_base = {(m.parent, re.sub(r"_mask$", "", m.stem)): m for m in masks}
        images = {
            (p.parent, p.stem): p
            for folder in {m.parent for m in masks}
            for p in folder.glob("*.tif")
            if not p.stem.endswith("_mask")
        }
        keys = sorted(set(by_base) | set(images), key=lambda k: (k[0].name, natural_key(k[1])))
        for folder, base in keys:
            mask = by_base.get((folder, base))
            yield segmentation_item(
                dataset=self.name,
                sample_id=base,
                modality=self.modality,
                image=images.get((folder, base), folder / f"{base}.tif"),
                mask=mask,
                mask_files=[mask] if mask else [],
                data_root=opts["data_root"],
                root=root,
                meta={"patient": folder.name, "release": "lgg"},
            )
