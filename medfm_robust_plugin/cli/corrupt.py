"""`medfm-robust corrupt` and `preview`: one image file corrupted, or a grid of corruptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import SEVERITY_HELP, check_seed, fail, parse_list, parse_severities


@click.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False))
@click.option("--corruption", "-c", "name", required=True, help="Corruption name.")
@click.option("--severity", "-s", default=3.0, show_default=True, type=float, help=SEVERITY_HELP)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--mode",
    type=click.Choice(["table", "ssim"]),
    default="table",
    show_default=True,
    help="table: fixed parameters; ssim: calibrate the level on this image by SSIM.",
)
@click.option(
    "--slice", "slice_index", type=int, help="Slice of a 3-D NIfTI volume (default: middle)."
)
@click.option(
    "--frame",
    "frame_index",
    type=int,
    help="Frame of a multi-frame DICOM (cine, enhanced CT/MR; default: middle).",
)
@click.option(
    "--params",
    "params_path",
    type=click.Path(dir_okay=False),
    help="Also write the applied parameters as JSON here.",
)
@click.option("--modality", help="What the image is (ct, mri, ...), when the file does not say.")
@click.option(
    "--window",
    help="Window the model sees: bottom,top (e.g. -160,240) or a CT preset "
    "(soft_tissue, brain, lung, bone, liver). Default: the file's, else by modality.",
)
@click.option("--pixel-spacing", help="Row,column pixel spacing in mm, when the file does not say.")
@click.option("--force", is_flag=True, help="Overwrite IN when OUT names the same file.")
def corrupt(
    input_path: str,
    output_path: str,
    name: str,
    severity: float,
    seed: int,
    mode: str,
    slice_index: int | None,
    frame_index: int | None,
    params_path: str | None,
    modality: str | None,
    window: str | None,
    pixel_spacing: str | None,
    force: bool,
) -> None:
    """Corrupt one image file (PNG, JPEG, TIFF, DICOM, NIfTI) into OUT, keeping its dtype."""
    from ..engine import corrupt as apply
    from ..errors import MedFMRobustError
    from ..image import load_image, save_image

    level: float = int(severity) if float(severity).is_integer() else severity
    check_seed(seed)
    if _same_file(input_path, output_path) and not force:
        fail(
            f"OUT '{output_path}' is the input file itself; name another OUT, or pass --force "
            "to overwrite the input"
        )
    if params_path:
        _check_new_file(params_path, "--params")
    try:
        image = load_image(input_path, slice_index=slice_index, frame=frame_index)
        if mode == "ssim":
            _check_ssim_size(image.array, input_path)
        out, params = apply(
            image,
            name,
            level,
            seed,
            True,
            mode=mode,
            sample_id=input_path,
            modality=modality,
            window=_parse_window(window),
            pixel_spacing=_parse_pair(pixel_spacing, "--pixel-spacing"),
        )
        save_image(output_path, out, like=image)
    except MedFMRobustError as exc:
        fail(str(exc))
    if params_path:
        try:
            Path(params_path).write_text(json.dumps(params, indent=2))
        except OSError as exc:
            fail(f"--params {params_path}: could not be written ({exc.strerror or exc})")
    click.echo(f"wrote {output_path} ({name}, severity {level}, seed {seed})")
    calibration = params.get("calibration") if mode == "ssim" else None
    if calibration and not calibration.get("in_band"):
        click.echo(f"warning: {_missed_band(calibration, params.get('ssim_region'))}", err=True)


def _missed_band(calibration: dict[str, Any], region: dict[str, Any] | None = None) -> str:
    """One line: which level's SSIM band calibration did not reach, and what it got instead."""
    low, high = calibration["band"]
    where = (
        f" over the {region['kind']} ({100 * region['share']:.0f}% of the frame)" if region else ""
    )
    why = calibration.get("note", "").removeprefix("band not reached: ") or (
        "the corruption cannot reach it on this image"
        if not calibration.get("reachable", True)
        else "the SSIM steps over it between two strengths"
    )
    return (
        f"level {calibration['level']} SSIM band {low:.2f}-{high:.2f} not reached: the image "
        f"written has SSIM {calibration['ssim']:.3f}{where} at strength "
        f"{calibration['strength']:.3f} "
        f"({why}); it is the closest this corruption gets to the band"
    )


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (after resolving links; hard links too)."""
    import os

    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _check_new_file(path: str, option: str) -> None:
    """Refuse a file that cannot be written, before any work (its folder must exist)."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        fail(f"{option} {path}: that is a folder; give a file name")
    if not folder.is_dir():
        fail(f"{option} {path}: the folder '{folder}' does not exist; create it first")


def _check_ssim_size(array: Any, source: str) -> None:
    from ..ssim import WIN

    if min(array.shape[:2]) < WIN:
        fail(
            f"'{source}': --mode ssim measures SSIM, which needs at least {WIN} x {WIN} pixels; "
            f"this image is {array.shape[0]} x {array.shape[1]}; use --mode table"
        )


def _parse_pair(text: str | None, option: str) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        fail(f"{option} {text!r}: give two numbers separated by a comma, e.g. 0.7,0.7")
    return a, b


def _parse_window(text: str | None) -> str | tuple[float, float] | None:
    if text is None or "," not in text:
        return text
    return _parse_pair(text, "--window")


@click.command()
@click.argument("image_path", metavar="[IMAGE]", required=False, type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", default="preview.png", show_default=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--corruptions",
    "names",
    help="Comma-separated corruption names (default: all of the modality).",
)
@click.option(
    "--modality", help="Use this modality's suite (and its phantom when no IMAGE is given)."
)
@click.option(
    "--severities", default="1-5", show_default=True, help="Range or list, e.g. 1-5 or 1,3,5."
)
@click.option("--mode", type=click.Choice(["table", "ssim"]), default="table", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--tile", default=128, show_default=True, type=int, help="Thumbnail size in pixels.")
def preview(
    image_path: str | None,
    output: str,
    names: str | None,
    modality: str | None,
    severities: str,
    mode: str,
    seed: int,
    tile: int,
) -> None:
    """A labelled grid of corruptions at severities 1-5 (IMAGE, or an embedded phantom)."""
    from ..errors import MedFMRobustError

    check_seed(seed)
    if image_path and _same_file(image_path, output):
        fail(f"-o '{output}' is IMAGE itself; name another output file")
    try:
        path = _write_preview(
            image_path,
            output,
            parse_list(names),
            modality,
            parse_severities(severities),
            mode,
            seed,
            tile,
        )
    except MedFMRobustError as exc:
        fail(str(exc))
    click.echo(f"wrote {path}")


def _write_preview(
    image_path, output, names, modality, severities, mode, seed, tile, items=None
) -> Path:
    from ..data.phantoms import GENERATORS, phantom
    from ..engine import get_corruption, list_corruptions
    from ..image import load_image
    from ..preview import check_modality, check_output, check_tile, save_preview

    check_output(output)
    check_tile(tile)
    check_modality(modality)
    if image_path:
        from ..engine import image_context

        image = load_image(image_path)  # its DICOM modality, window and spacing come along
        if mode == "ssim":
            _check_ssim_size(image.array, image_path)
        modality = modality or image_context(image, image_path)[2].modality
        label = Path(image_path).name
    else:
        which = modality if modality in GENERATORS else "dermoscopy"
        image = phantom(which, 256, seed=seed).image
        label = f"{which} phantom"
    if items is None and not names and modality is None:
        # every registered corruption on one sheet is a poster nobody reads (70 rows)
        fail(
            "say which corruptions to preview: --modality MODALITY (its suite, e.g. --modality "
            "mri) or --corruptions a,b (`medfm-robust corruptions list` names them)"
            + ("; the image does not say its modality" if image_path else "")
        )
    if items is None:
        items = [get_corruption(n) for n in names] if names else list_corruptions(modality=modality)
    if not items:
        fail(f"no corruptions for modality '{modality}'; see `medfm-robust corruptions suites`")
    title = f"MedFM-Robust  {label}  {_what(items, names, modality)}  ({mode} severities)"
    return save_preview(
        output,
        image,
        items,
        severities,
        seed=seed,
        tile=tile,
        title=title,
        mode=mode,
        modality=modality,
    )


def _what(items: list[Any], names: list[str] | None, modality: str | None) -> str:
    """What a preview shows, for its title: the chosen corruptions, or the modality's suite."""
    if not names:
        return f"{modality} suite ({len(items)} corruptions)"
    shown = ", ".join(item.name for item in items[:3])
    return shown + (f" and {len(items) - 3} more" if len(items) > 3 else "")
