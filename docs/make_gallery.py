"""Rebuild docs/gallery/: each modality's own corruptions on its phantom, severities 1, 3, 5.

python docs/make_gallery.py
"""

from pathlib import Path

from medfm_robust_plugin.data.phantoms import phantom
from medfm_robust_plugin.modalities import label
from medfm_robust_plugin.preview import preview_grid
from medfm_robust_plugin.suites import get_suite

MODALITIES = (
    "ct",
    "mri",
    "xray",
    "ultrasound",
    "endoscopy",
    "dermoscopy",
    "pathology",
    "fundus",
    "oct",
)


def main() -> None:
    out = Path(__file__).parent / "gallery"
    out.mkdir(exist_ok=True)
    for modality in MODALITIES:
        suite = get_suite(modality)
        items = [suite.corruption(name) for name in suite.corruption_names("modality_specific")]
        grid = preview_grid(
            phantom(modality, 192, seed=0).image,
            items,
            severities=(1, 3, 5),
            tile=96,
            title=f"{label(modality)}: modality-specific corruptions, severities 1, 3, 5",
            modality=modality,
        )
        grid.convert("RGB").save(out / f"{modality}.jpg", quality=85, optimize=True)
        print(f"wrote {out / modality}.jpg")


if __name__ == "__main__":
    main()
