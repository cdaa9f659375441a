"""Validity of the severity levels on the reference set, and physics figures of the corruptions.

    python benchmarks/validity.py [--quick] [--modality ct,mri] [--json out.json]

Per modality:
- table mode: % of (corruption, k) whose median presented SSIM over the modality's reference images
  lies in band k (medical corruptions, and the natural family's ImageNet-C tables apart);
- SSIM mode: % of (image, corruption, k) calibrated into band k, and how many are unreachable;
- physics: CT noise HU std over the full slice and a centre crop (the same region of the clean
  and the noisy slice), ultrasound speckle spread in bright and dark regions (dB), MR bias-field
  gain (p95/p5 of corrupted over clean), stain variation colour shift (CIE Lab delta E), each at
  its modality suite's table (the one runs apply, with the tuned overrides of
  ``corruptions/<modality>.yaml``).

``--quick`` reduces images to 256 pixels and takes at most two images per modality, so that it
runs in a few minutes on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from medfm_robust_plugin.calibration import PAPER_BANDS
from medfm_robust_plugin.corruptions.mri import object_mask
from medfm_robust_plugin.data.reference_set import reference_images, reference_modalities
from medfm_robust_plugin.engine import corrupt, image_context
from medfm_robust_plugin.levels import LEVELS, in_band, level_seed, table_medians
from medfm_robust_plugin.suites import suite_for_modality


def table_mode(modality: str, references: list) -> dict[str, Any]:
    suite = suite_for_modality(modality)
    medical = set(suite.corruption_names("modality_specific"))
    result: dict[str, Any] = {"medical": {}, "natural": {}}
    for spec in suite.corruptions():
        medians = table_medians(spec, references)
        group = "medical" if spec.name in medical else "natural"
        result[group][spec.name] = [round(m, 4) for m in medians]
    for group in ("medical", "natural"):
        rows = result[group]
        hits = sum(in_band(m, k) for medians in rows.values() for k, m in zip(LEVELS, medians))
        total = len(LEVELS) * len(rows)
        result[f"{group}_in_band_pct"] = round(100.0 * hits / max(total, 1), 1)
    return result


def ssim_mode(modality: str, references: list) -> dict[str, Any]:
    suite = suite_for_modality(modality)
    calibrated = in_band_count = unreachable = 0
    misses: list[str] = []
    unreachable_list: list[str] = []
    errors: list[str] = []
    by_source = {"real": [0, 0], "phantom": [0, 0]}  # [in band, conditions]
    for spec in suite.corruptions():
        for reference in references:
            source = by_source["real" if reference.real else "phantom"]
            for k in LEVELS:
                source[1] += 1
                seed = level_seed(reference.name, spec.name, k)
                try:
                    _, params = corrupt(
                        reference.image, spec, k, seed, True, modality=modality, mode="ssim"
                    )
                except Exception as exc:  # counted out of band and listed, not a crash of the run
                    calibrated += 1
                    errors.append(f"{spec.name} {reference.name} L{k}: {type(exc).__name__}: {exc}")
                    print(f"  {modality} SSIM mode error: {errors[-1]}", file=sys.stderr)
                    continue
                record = params["calibration"]
                calibrated += 1
                where = f"{spec.name} {reference.name} L{k}: SSIM {record['ssim']:.3f}"
                if record["in_band"]:
                    in_band_count += 1
                    source[0] += 1
                elif not record["reachable"]:
                    unreachable += 1
                    unreachable_list.append(where)
                else:
                    misses.append(where)
    return {
        "conditions": calibrated,
        "in_band_pct": round(100.0 * in_band_count / max(calibrated, 1), 1),
        "unreachable": unreachable,
        "out_of_band_reachable": len(misses),
        "unreachable_list": unreachable_list,
        "misses": misses,
        "errors": errors,
        "by_source": by_source,
    }


# ----------------------------------------------------------------------------- physics figures


def ct_noise(references: list) -> dict[str, Any]:
    """HU std of (noisy - clean) over the full slice and a centre crop, per severity."""
    rows = {}
    spec = suite_for_modality("ct").corruption("ct_low_dose_noise")  # the suite's table
    for reference in references:
        clean = reference.array.astype(np.float32)
        h, w = clean.shape[:2]
        crop = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
        full_std, crop_std = [], []
        for k in LEVELS:
            out = corrupt(reference.image, spec, k, level_seed(reference.name, "ct", k))
            diff = np.asarray(out, np.float32).reshape(clean.shape) - clean
            full_std.append(round(float(diff.std()), 1))
            crop_std.append(round(float(diff[crop].std()), 1))
        rows[reference.name] = {"full_hu_std": full_std, "centre_crop_hu_std": crop_std}
    return rows


def _robust_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the standard deviation of a normal spread, unmoved
    by the display clipping up to a quarter of the values at either end."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def ultrasound_speckle(references: list) -> dict[str, Any]:
    """Spread of the added speckle in the display's dB, in the brightest and darkest quartile of
    the echoes inside the scanned region.

    The display shows ``DYNAMIC_RANGE_DB`` over its grey scale, so a change of grey level is a
    change in dB; the spread is the robust standard deviation of that change (``_robust_std``:
    the display clips strong speckle to black in dark tissue, which a plain standard deviation
    would read as a smaller spread). Black pixels of the clean scan (no echo) are left out.
    """
    from medfm_robust_plugin.corruptions.ultrasound import DYNAMIC_RANGE_DB
    from medfm_robust_plugin.imaged_region import imaged_region

    rows = {}
    spec = suite_for_modality("ultrasound").corruption("ultrasound_speckle")
    for reference in references:
        array, _, context, shown = image_context(reference.image, modality="ultrasound")
        clean = _grey(shown.to_unit(array))
        region = imaged_region(array, context)
        echoes = (clean > 0.02) if region is None else (clean > 0.02) & region.mask
        low, high = np.percentile(clean[echoes], [25, 75])
        bright, dark = echoes & (clean >= high), echoes & (clean <= low)
        spread_bright, spread_dark = [], []
        for k in LEVELS:
            seed = level_seed(reference.name, "us", k)
            out = corrupt(reference.image, spec, k, seed, modality="ultrasound")
            change_db = (_grey(shown.to_unit(np.asarray(out))) - clean) * DYNAMIC_RANGE_DB
            spread_bright.append(round(_robust_std(change_db[bright]), 2))
            spread_dark.append(round(_robust_std(change_db[dark]), 2))
        rows[reference.name] = {"bright_db": spread_bright, "dark_db": spread_dark}
    return rows


def mri_bias_gain(references: list) -> dict[str, Any]:
    """p95/p5 of the gain (corrupted / clean) over the imaged object, as the corruption finds it."""
    rows = {}
    spec = suite_for_modality("mri").corruption("mri_bias_field")
    for reference in references:
        clean = reference.array.astype(np.float32)
        context = image_context(reference.image, reference.name, modality="mri")[2]
        inside = object_mask(clean.reshape(clean.shape[:2]), context).reshape(clean.shape)
        gains = []
        for k in LEVELS:
            out = np.asarray(
                corrupt(
                    reference.image,
                    spec,
                    k,
                    level_seed(reference.name, "bias", k),
                    modality="mri",
                ),
                np.float32,
            ).reshape(clean.shape)
            gain = out[inside] / np.maximum(clean[inside], 1e-6)
            p5, p95 = np.percentile(gain, [5, 95])
            gains.append(round(float(p95 / max(p5, 1e-6)), 3))
        rows[reference.name] = {"gain_p95_over_p5": gains}
    return rows


def stain_shift(references: list) -> dict[str, Any]:
    """Mean CIE Lab delta E (1976) between clean and stain-varied tiles, per severity."""
    from skimage.color import rgb2lab

    rows = {}
    spec = suite_for_modality("pathology").corruption("pathology_stain_variation")
    for reference in references:
        clean = rgb2lab(reference.array[..., :3])
        shifts = []
        for k in LEVELS:
            out = corrupt(
                reference.image,
                spec,
                k,
                level_seed(reference.name, "stain", k),
                modality="pathology",
            )
            lab = rgb2lab(np.asarray(out)[..., :3])
            shifts.append(round(float(np.sqrt(((lab - clean) ** 2).sum(-1)).mean()), 2))
        rows[reference.name] = {"mean_delta_e": shifts}
    return rows


def _grey(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, np.float32)
    return array[..., :3].mean(-1) if array.ndim == 3 else array


PHYSICS = {
    "ct": ("ct_noise_hu", ct_noise),
    "ultrasound": ("ultrasound_speckle_db", ultrasound_speckle),
    "mri": ("mri_bias_gain", mri_bias_gain),
    "pathology": ("stain_delta_e", stain_shift),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", help="comma-separated modalities (default: all)")
    parser.add_argument("--quick", action="store_true", help="256 px, at most 2 images each")
    parser.add_argument("--no-ssim", action="store_true", help="skip SSIM mode (the slow part)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    modalities = args.modality.split(",") if args.modality else reference_modalities()
    figures: dict[str, Any] = {"bands": {str(k): list(v) for k, v in PAPER_BANDS.items()}}
    print(
        f"{'modality':11s} {'images':>6s} {'table medical':>14s} {'table natural':>14s} "
        f"{'ssim in band':>13s} {'unreachable':>12s} {'seconds':>8s}"
    )
    totals = {"table_hits": 0, "table_total": 0, "ssim_hits": 0.0, "ssim_total": 0}
    by_source = {"real": [0, 0], "phantom": [0, 0]}
    for modality in modalities:
        start = time.perf_counter()
        references = reference_images(modality, max_size=256 if args.quick else None)
        if args.quick:
            references = references[:2]
        row: dict[str, Any] = {"images": [r.name for r in references]}
        row["table"] = table_mode(modality, references)
        medical = row["table"]["medical"]
        totals["table_hits"] += sum(
            in_band(m, k) for medians in medical.values() for k, m in zip(LEVELS, medians)
        )
        totals["table_total"] += len(LEVELS) * len(medical)
        ssim_cell = unreachable_cell = "-"
        if not args.no_ssim:
            row["ssim"] = ssim_mode(modality, references)
            totals["ssim_hits"] += row["ssim"]["in_band_pct"] * row["ssim"]["conditions"] / 100.0
            totals["ssim_total"] += row["ssim"]["conditions"]
            for source, (hits, total) in row["ssim"]["by_source"].items():
                by_source[source][0] += hits
                by_source[source][1] += total
            ssim_cell = f"{row['ssim']['in_band_pct']:.1f}%"
            unreachable_cell = str(row["ssim"]["unreachable"])
        if modality in PHYSICS:
            key, measure = PHYSICS[modality]
            row[key] = measure(references)
        figures[modality] = row
        print(
            f"{modality:11s} {len(references):6d} {row['table']['medical_in_band_pct']:13.1f}% "
            f"{row['table']['natural_in_band_pct']:13.1f}% {ssim_cell:>13s} "
            f"{unreachable_cell:>12s} {time.perf_counter() - start:8.1f}",
            flush=True,
        )
    table_pct = 100.0 * totals["table_hits"] / max(totals["table_total"], 1)
    print(f"\ntable mode, medical corruptions: {table_pct:.1f}% of (corruption, level) in band")
    figures["table_medical_in_band_pct"] = round(table_pct, 1)
    if totals["ssim_total"]:
        ssim_pct = 100.0 * totals["ssim_hits"] / totals["ssim_total"]
        print(f"SSIM mode: {ssim_pct:.1f}% of {totals['ssim_total']} (image, corruption, level)")
        figures["ssim_in_band_pct"] = round(ssim_pct, 1)
        for source, label in (("real", "real images"), ("phantom", "phantoms")):
            hits, total = by_source[source]
            if total:
                pct = 100.0 * hits / total
                print(f"  on the {label}: {pct:.1f}% of {total}")
                figures[f"ssim_in_band_pct_{source}"] = round(pct, 1)
    for modality in modalities:
        row = figures[modality]
        for key in ("ct_noise_hu", "ultrasound_speckle_db", "mri_bias_gain", "stain_delta_e"):
            if key in row:
                print(f"\n{modality} {key}:")
                for name, values in row[key].items():
                    print(f"  {name}: {values}")
        misses = row.get("ssim", {}).get("misses", [])
        for miss in misses[:10]:
            print(f"  {modality} SSIM mode out of band: {miss}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
