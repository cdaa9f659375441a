"""Tune the severity tables of each modality's own corruptions on the reference set, so that level
k's median presented SSIM lies in the paper's band k; print the proposed tables and, with
``--write``, store them as ``severity_params`` overrides in ``corruptions/<modality>.yaml``.

    python benchmarks/tune_levels.py [--modality ct,mri] [--names a,b] [--max-size 384] [--write]

Rerun it whenever a corruption's physics changes. Natural-family tables (ImageNet-C constants) are
never touched, so table mode stays comparable with ImageNet-C.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from medfm_robust_plugin.calibration import PAPER_BANDS
from medfm_robust_plugin.data.reference_set import reference_images, reference_modalities
from medfm_robust_plugin.levels import LEVELS, medical_corruptions, table_medians, tune_levels

SUITES = Path(__file__).resolve().parent.parent / "corruptions"
# Tables measured here but never written: SSIM compares structure, and these corruptions change
# colour, so their SSIM neither orders their levels nor reaches the lower bands; their tables
# follow the literature's ranges instead.
KEPT = {
    "pathology_stain_variation": "HED perturbation from 0.7x to 2x Tellez's 'HED-strong' range",
}


def yaml_value(value) -> str:
    """A table as one flow-style YAML line (tuples become lists)."""
    return json.dumps(value)


def write_overrides(modality: str, tables: dict[str, list]) -> list[str]:
    """Rewrite the modality_specific entries of ``corruptions/<modality>.yaml`` in place.

    Only the entries' own lines change: a plain ``- name  # comment`` becomes a mapping with the
    comment kept on its first line; an existing ``severity_params`` line is replaced. Returns the
    names written.
    """
    path = SUITES / f"{modality}.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    written: list[str] = []
    section = None
    i = 0
    while i < len(lines):
        line = lines[i]
        top = re.match(r"^([A-Za-z_]+):", line)
        if top:
            section = top.group(1)
        entry = re.match(r"^(\s*)-\s+(?:name:\s*)?([A-Za-z0-9_]+)\s*(#.*)?$", line)
        if section == "modality_specific" and entry and entry.group(2) in tables:
            indent, name, comment = entry.group(1), entry.group(2), entry.group(3)
            out.append(f"{indent}- name: {name}" + (f"  {comment}" if comment else ""))
            out.append(f"{indent}  severity_params: {yaml_value(tables[name])}")
            written.append(name)
            i += 1
            # drop the old override line(s) of a mapping entry
            while i < len(lines) and re.match(rf"^{indent}\s+severity_params:", lines[i]):
                i += 1
            continue
        out.append(line)
        i += 1
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", help="comma-separated modalities (default: all)")
    parser.add_argument("--names", help="comma-separated corruptions (default: all medical)")
    parser.add_argument("--max-size", type=int, default=None, help="reduce larger images to this")
    parser.add_argument("--write", action="store_true", help="write the tables into the suites")
    args = parser.parse_args()

    modalities = args.modality.split(",") if args.modality else reference_modalities()
    wanted = set(args.names.split(",")) if args.names else None
    before_hits = after_hits = total = 0
    unreachable: list[str] = []
    for modality in modalities:
        references = reference_images(modality, max_size=args.max_size)
        tables: dict[str, list] = {}
        for spec in medical_corruptions(modality):
            if wanted and spec.name not in wanted:
                continue
            start = time.perf_counter()
            before = table_medians(spec, references)
            tuned = tune_levels(spec, references)
            hits_before = sum(lo <= m <= hi for m, (lo, hi) in zip(before, PAPER_BANDS.values()))
            hits_after = sum(tuned.in_band)
            before_hits += hits_before
            after_hits += hits_after
            total += len(LEVELS)
            if spec.name in KEPT:
                print(f"    kept (not written): {KEPT[spec.name]}")
            else:
                tables[spec.name] = tuned.severity_params
            for k, ok in zip(LEVELS, tuned.reachable):
                if not ok:
                    unreachable.append(f"{modality}/{spec.name} L{k}")
            print(
                f"{modality:10s} {spec.name:32s} in band {hits_before}/5 -> {hits_after}/5 "
                f"({time.perf_counter() - start:.1f} s)\n"
                f"    before {[round(m, 3) for m in before]}\n"
                f"    after  {[round(m, 3) for m in tuned.medians]}\n"
                f"    severity_params: {yaml_value(tuned.severity_params)}",
                flush=True,
            )
        if args.write and tables:
            names = write_overrides(modality, tables)
            print(f"wrote {len(names)} tables into corruptions/{modality}.yaml")
    if total:
        print(
            f"\nmedian SSIM in band: {100.0 * before_hits / total:.1f}% -> "
            f"{100.0 * after_hits / total:.1f}% of {total} (corruption, level)"
        )
    if unreachable:
        print("unreachable within param_range:", ", ".join(unreachable))
    return 0


if __name__ == "__main__":
    sys.exit(main())
