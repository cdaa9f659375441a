"""Rebuild docs/gallery/: each modality's own corruptions, severities 1, 3, 5, on the first real
image of the reference set (docs/reference_set.md) where the package has one, its phantom otherwise,
shown as a model sees it (CT through its DICOM window, MR through robust percentiles).

python docs/make_gallery.py   (needs the test extra: pip install -e ".[dev]")
"""

from pathlib import Path

from medfm_robust_plugin.data.reference_set import reference_images
from medfm_robust_plugin.modalities import MODALITIES, label
from medfm_robust_plugin.preview import preview_grid
from medfm_robust_plugin.suites import get_suite


def main() -> None:
    out = Path(__file__).parent / "gallery"
    out.mkdir(exist_ok=True)
    for modality in MODALITIES:
        suite = get_suite(modality)
        items = [suite.corruption(name) for name in suite.corruption_names("modality_specific")]
        reference = reference_images(modality, max_size=512)
        shown = next((r for r in reference if r.real), reference[0])
        source = shown.entry.path.rsplit("/", 1)[-1] if shown.real else "phantom"
        grid = preview_grid(
            shown.image,
            items,
            severities=(1, 3, 5),
            tile=112,
            title=f"{label(modality)} ({source}): modality-specific corruptions, severities 1, 3, 5",
            modality=modality,
        )
        grid.convert("RGB").save(out / f"{modality}.jpg", quality=85, optimize=True)
        print(f"wrote {out / modality}.jpg")


if __name__ == "__main__":
    main()
