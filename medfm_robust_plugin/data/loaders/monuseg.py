"""MoNuSeg (Kumar et al., IEEE TMI 2017 / 2020): nuclei outlined on 1000 x 1000 H&E tiles.

Released layout::

    MoNuSeg 2018 Training Data/Tissue Images/TCGA-...-DX1.tif   (37 tiles)
    MoNuSeg 2018 Training Data/Annotations/TCGA-...-DX1.xml
    MoNuSegTestData/TCGA-...-DX1.tif and TCGA-...-DX1.xml         (14 tiles)

The XML (Aperio ImageScope format) holds one ``Region`` per nucleus with its outline as
``Vertices/Vertex`` (``X``, ``Y`` in pixels). Outlines are filled with cv2.fillPoly at sub-pixel
precision. ``unit='nucleus'`` (the default) gives one sample per nucleus, its own mask and box as
the prompt; ``unit='tile'`` gives one sample per tile with all nuclei in its mask.
"""

from __future__ import annotations

import functools
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import MedFMRobustError
from ..sample import Sample, Skipped, mask_box
from .base import FileDataset, Item, find_dir, find_dirs, layout_error, natural_key
from .checks import Box, image_problem
from .sources import polygon_mask

UNITS = ("nucleus", "tile")


def read_outlines(path: Path) -> list[np.ndarray]:
    """Each Region's outline as an (n, 2) float array of (x, y) pixel coordinates."""
    outlines = []
    for region in ET.parse(path).getroot().iter("Region"):
        points = [
            (float(v.get("X", "nan")), float(v.get("Y", "nan"))) for v in region.iter("Vertex")
        ]
        outlines.append(np.asarray(points, np.float64).reshape(-1, 2))
    return outlines


def outline_box(outline: np.ndarray, width: int, height: int) -> Box | None:
    """The tight pixel box of a filled outline inside the image (rasterised on a small canvas)."""
    x0 = max(int(math.floor(outline[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(outline[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(outline[:, 0].max())) + 2, width)
    y1 = min(int(math.ceil(outline[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = polygon_mask([outline - (x0, y0)], y1 - y0, x1 - x0)
    box = mask_box(local)
    if box is None:
        return None
    return box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0


class MoNuSeg(FileDataset):
    name = "monuseg"
    kinds = ("segmentation",)
    modality = "pathology"
    description = (
        "MoNuSeg: 51 H&E tiles (37 training, 14 test, 1000 x 1000 at 40x) from 9 organs with "
        "about 29,000 nuclei outlined in XML; one sample per nucleus (or per tile)."
    )
    access = (
        "monuseg.grand-challenge.org/Data: the training and test sets are free downloads (Google "
        "Drive links on the page); CC BY-NC-SA 4.0."
    )
    layout = (
        "'MoNuSeg 2018 Training Data/Tissue Images/*.tif' with 'Annotations/*.xml', and "
        "MoNuSegTestData/ holding *.tif with *.xml"
    )
    splits = ("train", "test")
    default_split = "test"
    options: ClassVar[dict[str, Any]] = {"unit": "nucleus"}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        if opts["unit"] not in UNITS:
            raise MedFMRobustError(f"dataset '{self.name}': unit must be 'nucleus' or 'tile'")
        folders = []
        if self.wants("train", opts):
            tiles, notes = find_dir(root, "Tissue Images"), find_dir(root, "Annotations")
            if tiles and notes:
                folders.append(("train", tiles, notes))
        if self.wants("test", opts):
            test = [d for d in find_dirs(root, "MoNuSegTestData") if any(d.glob("*.xml"))]
            folders += [("test", d, d) for d in test[:1]]
        if not folders:
            raise layout_error(self.name, root, self.layout)
        for split, tiles, notes in folders:
            images = {p.stem: p for p in tiles.glob("*.tif")}
            outlines = {p.stem: p for p in notes.glob("*.xml")}
            for stem in sorted(set(images) | set(outlines), key=natural_key):
                image = images.get(stem, tiles / f"{stem}.tif")
                yield from self._tile(stem, image, outlines.get(stem), split, root, opts)

    def _tile(self, stem, image: Path, xml: Path | None, split, root: Path, opts) -> Iterator[Item]:
        unit = opts["unit"]
        opts["data_root"].check(stem, image)
        if xml is not None:
            opts["data_root"].check(stem, xml, "annotation")
        size, problem = image_problem(image, root)
        if problem:
            yield Skipped(stem, problem)
            return
        if xml is None:
            yield Skipped(stem, f"annotation file is missing: {stem}.xml")
            return
        try:
            outlines = read_outlines(xml)
        except (ET.ParseError, ValueError, OSError) as exc:
            yield Skipped(stem, f"annotation {xml.name} cannot be parsed ({exc})")
            return
        width, height = size
        meta = {"split": split, "tile": stem}
        if unit == "tile":
            yield self._tile_sample(stem, image, outlines, width, height, meta)
            return
        for number, outline in enumerate(outlines, start=1):
            sample_id = f"{stem}_n{number:04d}"
            if len(outline) < 3 or not np.isfinite(outline).all():
                yield Skipped(sample_id, "nucleus outline has fewer than 3 valid vertices")
                continue
            box = outline_box(outline, width, height)
            if box is None:
                yield Skipped(sample_id, "nucleus outline is empty or outside the tile once filled")
                continue
            yield Sample(
                sample_id,
                self.name,
                self.modality,
                image,
                mask=functools.partial(polygon_mask, (outline,), height, width),
                box=box,
                meta={**meta, "nucleus": number},
            )

    def _tile_sample(self, stem, image, outlines, width, height, meta) -> Item:
        valid = tuple(
            o
            for o in outlines
            if len(o) >= 3 and np.isfinite(o).all() and outline_box(o, width, height)
        )
        box = mask_box(polygon_mask(valid, height, width)) if valid else None
        if box is None:
            return Skipped(stem, "tile has no nucleus outline")
        return Sample(
            stem,
            self.name,
            self.modality,
            image,
            mask=functools.partial(polygon_mask, valid, height, width),
            box=box,
            meta={**meta, "nuclei": len(valid)},
        )
