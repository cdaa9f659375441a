"""Captioning and report generation: ROCOv2 (captions) and IU X-ray / Open-i (chest X-ray reports)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ...errors import MedFMRobustError
from ..sample import Sample, Skipped
from .base import FileDataset, Item, find_dir, find_file, layout_error, natural_key, read_csv
from .checks import image_problem
from .choices import is_blank
from .hub import hub_image_problem, lazy_hub_image, open_hub, row_id, undecoded
from .modality_names import modality_from_cuis


def _cuis(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(";") if c.strip()]


def _concepts(path: Path | None) -> dict[str, list[str]]:
    """ID -> CUIs from a ROCOv2 concepts file (columns ID, CUIs; CUIs separated by ';')."""
    if path is None:
        return {}
    return {row.get("ID", ""): _cuis(row.get("CUIs")) for row in read_csv(path)}


class ROCOv2(FileDataset):
    """ROCOv2 (Rückert et al., Sci Data 2024): radiology images from PMC with their captions."""

    name = "rocov2"
    kinds = ("caption",)
    modality = None
    description = (
        "ROCOv2: about 80k radiology figures from the PMC open-access subset with their captions "
        "and UMLS concepts; the modality comes from the image's modality concept (CT, MRI, X-ray, "
        "ultrasound, angiography; others become 'other')."
    )
    access = (
        "Zenodo record 10821435 (ROCOv2; each image keeps the licence of its PMC article, CC BY "
        "or CC BY-NC, listed in license_information.csv): train/valid/test_images.zip "
        "and the *_captions.csv / *_concepts*.csv files, no registration. Also on the Hugging Face "
        "hub as eltorio/ROCOv2-radiology (a `datasets` copy; load with hub_id=True)."
    )
    layout = (
        "<split>_captions.csv (ID, Caption), <split>_concepts_manual.csv / <split>_concepts.csv "
        "(ID, CUIs) and the images in <split>/<ID>.jpg, for split train, valid or test"
    )
    splits = ("train", "valid", "test")
    default_split = "test"
    split_aliases: ClassVar[dict[str, str]] = {"validation": "valid", "val": "valid"}
    hub_id = "eltorio/ROCOv2-radiology"
    reads_hub = True
    HUB_SPLITS: ClassVar[dict[str, str]] = {"valid": "validation"}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        chosen = [s for s in self.splits if self.wants(s, opts)]
        tables = {s: find_file(root, f"{s}_captions.csv") for s in chosen}
        if not any(tables.values()):
            raise layout_error(self.name, root, self.layout)
        for split, captions in tables.items():
            if captions is None:
                continue
            images = find_dir(root, split) or captions.parent / split
            manual = _concepts(find_file(root, f"{split}_concepts_manual.csv"))
            automatic = _concepts(find_file(root, f"{split}_concepts.csv"))
            rows = sorted(read_csv(captions), key=lambda r: natural_key(r.get("ID", "")))
            for row in rows:
                sample_id = (row.get("ID") or "").strip()
                yield self._item(
                    sample_id, row.get("Caption"), images, root, manual, automatic, opts
                )

    def _item(self, sample_id, caption, images, root, manual, automatic, opts) -> Item:
        if not sample_id:
            return Skipped("?", "caption row has no ID")
        if is_blank(caption):
            return Skipped(sample_id, "caption is empty")
        image = opts["data_root"].check(sample_id, images / f"{sample_id}.jpg")
        _, problem = image_problem(image, root)
        if problem:
            return Skipped(sample_id, problem)
        cuis = manual.get(sample_id, []) + automatic.get(sample_id, [])
        meta = {"cuis": automatic.get(sample_id, []), "modality_cuis": manual.get(sample_id, [])}
        return Sample(
            sample_id,
            self.name,
            modality_from_cuis(cuis),
            image,
            answer=str(caption).strip(),
            meta=meta,
        )

    def read_hub(
        self, hub_id: str | None, hub_dataset: Any, opts: dict[str, Any]
    ) -> Iterator[Item]:
        for split, part in open_hub(self.name, hub_id, hub_dataset, opts["split"], self.HUB_SPLITS):
            part = undecoded(part, "image")
            for index in range(len(part)):
                row = part[index]
                sample_id = str(row.get("image_id") or row_id(split, index))
                _, problem = hub_image_problem(row.get("image"), None, sample_id, opts)
                if problem:
                    yield Skipped(sample_id, problem)
                    continue
                if is_blank(row.get("caption")):
                    yield Skipped(sample_id, "caption is empty")
                    continue
                cuis = list(row.get("cui") or [])
                yield Sample(
                    sample_id,
                    self.name,
                    modality_from_cuis(cuis),
                    lazy_hub_image(part, index, "image", None),
                    answer=str(row["caption"]).strip(),
                    meta={"cuis": cuis, "split": split},
                )


# ---------------------------------------------------------------------- IU X-ray


SECTIONS = ("findings+impression", "findings", "impression")


def compose_report(findings: str | None, impression: str | None, sections: str) -> str | None:
    """The reference report: the chosen sections' text, joined by a space; None when empty."""
    parts = {"findings": (findings or "").strip(), "impression": (impression or "").strip()}
    chosen = [parts[s] for s in sections.split("+") if parts.get(s)]
    return " ".join(chosen) or None


class IUXray(FileDataset):
    """IU X-ray / Open-i (Demner-Fushman et al., JAMIA 2016): chest X-rays with their reports."""

    name = "iu_xray"
    kinds = ("report",)
    modality = "xray"
    description = (
        "IU X-ray (Open-i): 3,955 chest X-ray reports with 7,470 frontal and lateral images; one "
        "sample per study, its frontal (or first) image and the findings and impression as the "
        "reference report. Reads the Open-i release, the Kaggle copy with its projection table, "
        "or the R2Gen annotation.json release (which carries the usual train/val/test split)."
    )
    access = (
        "Open-i (openi.nlm.nih.gov): NLMCXR_png.tgz (images) and NLMCXR_reports.tgz (XML reports), "
        "free to download under the NLM terms of use. The R2Gen split (annotation.json + images/) is "
        "linked from github.com/zhjohnchan/R2Gen; the Kaggle copy 'chest-xrays-indiana-university' "
        "(indiana_reports.csv, indiana_projections.csv, images/images_normalized/) needs a Kaggle login."
    )
    layout = (
        "annotation.json + images/<id>/<k>.png (R2Gen), or ecgen-radiology/*.xml with the PNG "
        "images (Open-i), or indiana_reports.csv + indiana_projections.csv with the images (Kaggle)"
    )
    splits = ("train", "val", "test")
    default_split = "test"
    split_aliases: ClassVar[dict[str, str]] = {"validation": "val", "valid": "val"}
    options: ClassVar[dict[str, Any]] = {"sections": "findings+impression", "projection": "frontal"}

    def read(self, root: Path, opts: dict[str, Any]) -> Iterator[Item]:
        if opts["sections"] not in SECTIONS:
            raise MedFMRobustError(
                f"dataset '{self.name}': sections must be one of {', '.join(SECTIONS)}"
            )
        annotation = find_file(root, "annotation.json")
        if annotation is not None:
            yield from self._r2gen(root, annotation, opts)
            return
        reports = find_dir(root, "ecgen-radiology")
        kaggle = find_file(root, "indiana_reports.csv")
        if reports is None and kaggle is None:
            raise layout_error(self.name, root, self.layout)
        if opts["split"] != "all":
            raise MedFMRobustError(
                f"dataset '{self.name}': the {'Open-i' if reports else 'Kaggle'} release under "
                f"'{root}' has no train/val/test split; pass split='all', or add R2Gen's "
                "annotation.json and images/ (the usual split)"
            )
        if reports is not None:
            yield from self._openi(root, reports, opts)
        else:
            yield from self._kaggle(root, kaggle, opts)

    def _report(
        self, sample_id: str, image: Path, root: Path, report: str | None, meta, opts
    ) -> Item:
        if not report:
            return Skipped(sample_id, "report has no findings or impression text")
        image = opts["data_root"].check(sample_id, image)
        _, problem = image_problem(image, root)
        if problem:
            return Skipped(sample_id, problem)
        return Sample(sample_id, self.name, "xray", image, answer=report, meta=meta)

    def _r2gen(self, root: Path, annotation: Path, opts: dict[str, Any]) -> Iterator[Item]:
        import json

        try:
            data = json.loads(annotation.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise layout_error(self.name, root, f"a readable annotation.json ({exc})") from exc
        if not isinstance(data, dict):
            raise layout_error(self.name, root, "annotation.json mapping train/val/test to studies")
        images = annotation.parent / "images"
        for split in self.splits:
            if not self.wants(split, opts):
                continue
            for entry in sorted(data.get(split, []), key=lambda e: natural_key(str(e.get("id")))):
                sample_id = str(entry.get("id") or "").strip() or "?"
                paths = [str(p) for p in entry.get("image_path") or []]
                if not paths:
                    yield Skipped(sample_id, "study lists no image")
                    continue
                report = (entry.get("report") or "").strip() or None
                meta = {"split": split, "views": paths}
                yield self._report(sample_id, images / paths[0], root, report, meta, opts)

    def _openi(self, root: Path, reports: Path, opts: dict[str, Any]) -> Iterator[Item]:
        pngs = {p.stem: p for p in root.rglob("*.png")}
        for xml_path in sorted(reports.glob("*.xml"), key=lambda p: natural_key(p.stem)):
            sample_id = f"CXR{xml_path.stem}"
            try:
                tree = ET.parse(xml_path)
            except ET.ParseError as exc:
                yield Skipped(sample_id, f"report XML cannot be parsed ({exc})")
                continue
            sections = {
                (node.get("Label") or "").lower(): node.text for node in tree.iter("AbstractText")
            }
            views = [node.get("id") for node in tree.iter("parentImage") if node.get("id")]
            if not views:
                yield Skipped(sample_id, "report has no image (no parentImage)")
                continue
            report = compose_report(
                sections.get("findings"), sections.get("impression"), opts["sections"]
            )
            image = pngs.get(views[0], reports.parent / f"{views[0]}.png")
            meta = {
                "views": views,
                "findings": sections.get("findings"),
                "impression": sections.get("impression"),
            }
            yield self._report(sample_id, image, root, report, meta, opts)

    def _kaggle(self, root: Path, reports_csv: Path, opts: dict[str, Any]) -> Iterator[Item]:
        projections_csv = find_file(root, "indiana_projections.csv")
        if projections_csv is None:
            raise layout_error(
                self.name, root, "indiana_projections.csv next to indiana_reports.csv"
            )
        views: dict[str, list[Mapping[str, str]]] = {}
        for row in read_csv(projections_csv):
            views.setdefault(row.get("uid", ""), []).append(row)
        pngs = {p.name: p for p in root.rglob("*.png")}
        wanted = str(opts["projection"]).lower()
        for row in sorted(read_csv(reports_csv), key=lambda r: natural_key(r.get("uid", ""))):
            uid = row.get("uid", "")
            sample_id = f"CXR{uid}"
            study = views.get(uid, [])
            if not study:
                yield Skipped(sample_id, "study has no image in indiana_projections.csv")
                continue
            chosen = next(
                (v for v in study if (v.get("projection") or "").lower() == wanted), study[0]
            )
            report = compose_report(row.get("findings"), row.get("impression"), opts["sections"])
            image = pngs.get(
                chosen.get("filename", ""), reports_csv.parent / chosen.get("filename", "")
            )
            meta = {
                "projection": chosen.get("projection"),
                "views": [v.get("filename") for v in study],
                "findings": row.get("findings"),
                "impression": row.get("impression"),
            }
            yield self._report(sample_id, image, root, report, meta, opts)
