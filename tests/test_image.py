"""Reading, checking and round-tripping images of every supported kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medfm_robust_plugin import (
    ImageReadError,
    InvalidImageError,
    corrupt,
    load_image,
    save_image,
)


def write_dicom(
    path,
    stored: np.ndarray,
    slope: float,
    intercept: float,
    *,
    modality: str = "CT",
    photometric: str = "MONOCHROME2",
    bits_stored: int = 16,
    window: tuple[float, float] | None = None,
    spacing: tuple[float, float] = (0.7, 0.7),
) -> None:
    """A minimal grayscale DICOM file with a rescale, built with pydicom."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.Modality = modality
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.PixelSpacing = list(spacing)
    ds.PixelData = stored.tobytes()
    ds.save_as(str(path), enforce_file_format=True)


@pytest.mark.parametrize(
    "suffix,array",
    [
        (".png", np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8)),
        (".png", np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)),
        (".png", np.random.default_rng(1).integers(0, 255, (40, 30, 4), dtype=np.uint8)),
        (".png", np.random.default_rng(2).integers(0, 4095, (40, 30), dtype=np.uint16)),
        (".png", np.random.default_rng(3).integers(0, 65535, (20, 24, 3), dtype=np.uint16)),
        (".tif", np.random.default_rng(4).integers(0, 65535, (40, 30), dtype=np.uint16)),
        (".tif", np.random.default_rng(5).normal(0, 300, (40, 30)).astype(np.float32)),
        (".tiff", np.random.default_rng(6).integers(0, 255, (16, 16, 3), dtype=np.uint8)),
    ],
)
def test_lossless_formats_round_trip(tmp_path, suffix, array):
    path = save_image(tmp_path / f"image{suffix}", array)
    loaded = load_image(path)
    assert loaded.array.dtype == array.dtype
    np.testing.assert_array_equal(loaded.array, array)


def test_jpeg_reads_as_uint8_rgb(tmp_path):
    array = np.full((32, 40, 3), (200, 100, 50), np.uint8)
    loaded = load_image(save_image(tmp_path / "photo.jpg", array)).array
    assert loaded.shape == (32, 40, 3) and loaded.dtype == np.uint8
    assert np.abs(loaded.astype(int) - array).max() <= 3  # red stays red after BGR handling


def test_dicom_is_rescaled_to_hounsfield_units_and_written_back(tmp_path):
    stored = np.random.default_rng(0).integers(0, 2000, (32, 32)).astype(np.int16)
    write_dicom(tmp_path / "ct.dcm", stored, slope=1.0, intercept=-1024.0)
    image = load_image(tmp_path / "ct.dcm")
    np.testing.assert_allclose(image.array, stored.astype(np.float32) - 1024)
    assert image.meta["modality"] == "CT" and image.spacing == (0.7, 0.7)
    out = corrupt(image.array, "gaussian_noise", severity=1, seed=0)
    save_image(tmp_path / "noisy.dcm", out, like=image)
    again = load_image(tmp_path / "noisy.dcm").array
    np.testing.assert_allclose(again, np.rint(out), atol=1.0)


def test_dicom_without_rescale_keeps_stored_dtype(tmp_path):
    stored = np.random.default_rng(0).integers(0, 4000, (16, 16)).astype(np.uint16)
    write_dicom(tmp_path / "xr.dcm", stored, slope=1.0, intercept=0.0)
    image = load_image(tmp_path / "xr.dcm").array
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, stored)


def test_nifti_volume_gives_the_requested_slice(tmp_path):
    import nibabel as nib

    volume = np.random.default_rng(0).normal(500, 100, (24, 20, 5)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.diag([0.9, 0.9, 3.0, 1.0])), str(tmp_path / "t1.nii.gz"))
    middle = load_image(tmp_path / "t1.nii.gz")
    np.testing.assert_array_equal(middle.array, volume[:, :, 2])
    assert middle.spacing == pytest.approx((0.9, 0.9))
    np.testing.assert_array_equal(
        load_image(tmp_path / "t1.nii.gz", slice_index=4).array, volume[:, :, 4]
    )
    with pytest.raises(InvalidImageError, match="slice 9"):
        load_image(tmp_path / "t1.nii.gz", slice_index=9)


def test_corrupt_accepts_paths_and_pil_images(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    path = save_image(tmp_path / "x.png", rgb)
    from_path = corrupt(str(path), "gaussian_noise", 2, seed=4)
    from_array = corrupt(rgb, "gaussian_noise", 2, seed=4)
    np.testing.assert_array_equal(from_path, from_array)
    pil = Image.fromarray(rgb[..., 0])
    out = corrupt(pil, "gaussian_noise", 2, seed=4)
    assert isinstance(out, Image.Image) and out.mode == "L" and out.size == pil.size


@pytest.mark.parametrize(
    "array,message",
    [
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.zeros((10, 10, 0), np.uint8), "empty"),
        (np.array([[np.nan, 1.0], [0.0, 1.0]], np.float32), "NaN"),
        (np.array([[np.inf, 1.0], [0.0, 1.0]]), "NaN or infinite"),
        (np.zeros((8, 8, 5), np.uint8), "5 channels"),
        (np.zeros((2, 8, 8, 3), np.uint8), "H x W"),
        (np.zeros(8, np.uint8), "H x W"),
        (np.zeros((8, 8), bool), "boolean"),
        (np.zeros((8, 8), np.complex64), "dtype complex64"),
    ],
)
def test_bad_arrays_give_one_clear_error_naming_the_sample(array, message):
    with pytest.raises(InvalidImageError) as info:
        corrupt(array, "gaussian_noise", sample_id="case-017")
    assert message in str(info.value) and "'case-017'" in str(info.value)


def test_pixel_limit_guards_before_decoding(tmp_path, monkeypatch):
    path = save_image(tmp_path / "big.png", np.zeros((64, 64), np.uint8))
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", "1000")
    with pytest.raises(InvalidImageError, match="exceeds the limit of 1000"):
        load_image(path)
    with pytest.raises(InvalidImageError, match="MEDFM_ROBUST_MAX_PIXELS"):
        corrupt(np.zeros((64, 64), np.uint8), "gaussian_noise")


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image(garbage)
    fake_dicom = tmp_path / "scan.dcm"
    fake_dicom.write_bytes(b"hello")
    with pytest.raises(ImageReadError, match="scan.dcm"):
        load_image(fake_dicom)


def test_saving_refuses_formats_that_would_lose_the_dtype(tmp_path):
    with pytest.raises(InvalidImageError, match="JPEG holds 8-bit"):
        save_image(tmp_path / "x.jpg", np.zeros((8, 8), np.uint16))
    with pytest.raises(InvalidImageError, match="unknown output format"):
        save_image(tmp_path / "x.webm", np.zeros((8, 8), np.uint8))


def test_float64_results_stay_inside_the_float64_range():
    """A physical-domain corruption computes in float32; the float64 bounds must still hold."""
    from medfm_robust_plugin import corrupt

    image = np.random.default_rng(0).random((24, 24)) * 0.9995572489918278
    image[0, 0] = 1.0
    out = corrupt(image, "ct_low_dose_noise", severity=5, seed=0)
    assert out.dtype == np.float64
    assert out.min() >= 0.0 and out.max() <= 1.0


# --------------------------------------------------------------------------- DICOM encodings


def pydicom_file(name: str) -> Path:
    import pydicom

    return Path(pydicom.__file__).parent / "data" / "test_files" / name


def deid_file(name: str) -> Path:
    import deid_data

    return Path(deid_data.__file__).parent / "data" / name


def test_palette_colour_dicom_reads_as_the_rgb_its_palette_shows(tmp_path):
    from pydicom import dcmread
    from pydicom.pixels import apply_color_lut

    path = pydicom_file("examples_palette.dcm")
    image = load_image(path)
    ds = dcmread(path)
    # the file's 16-bit tables hold 8-bit colours in their high byte
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)
    assert image.array.shape == (350, 800, 3) and image.array.dtype == np.uint8
    np.testing.assert_array_equal(image.array, expected)
    assert image.meta["photometric"] == "PALETTE COLOR" and image.meta["color"] == "RGB"
    assert np.abs(image.array[..., 0].astype(int) - image.array[..., 2]).max() > 100  # colour
    again = load_image(save_image(tmp_path / "rgb.dcm", image.array, like=image))
    np.testing.assert_array_equal(again.array, image.array)
    assert again.meta["photometric"] == "RGB"


@pytest.mark.parametrize("slope,intercept", [(1.0, 0.0), (2.0, -100.0)])
def test_monochrome1_is_inverted_so_that_higher_is_brighter(tmp_path, slope, intercept):
    """A CR in MONOCHROME1 shows its low values white; read, it must be the other way round."""
    stored = np.random.default_rng(0).integers(0, 4096, (24, 32)).astype(np.uint16)
    stored[0, 0], stored[0, 1] = 0, 4095  # white and black on a MONOCHROME1 display
    write_dicom(tmp_path / "cr.dcm", stored, slope, intercept, modality="CR",
                photometric="MONOCHROME1", bits_stored=12, window=(1000.0, 800.0))  # fmt: skip
    image = load_image(tmp_path / "cr.dcm")
    expected = (4095 - stored.astype(np.float64)) * slope + intercept
    np.testing.assert_allclose(image.array, expected)
    assert image.array[0, 0] > image.array[0, 1]  # the white pixel is now the higher value
    assert image.meta["inverted"] is True
    if slope == 1.0:
        assert image.array.dtype == np.uint16  # mirrored within 0..4095, the dtype holds
    # the header's window (600..1400 in rescaled MONOCHROME1 values) selects the same pixels
    lo, hi = image.meta["window"]
    rescaled = stored * slope + intercept
    inside_before = (rescaled >= 600) & (rescaled <= 1400)
    inside_after = (image.array >= lo) & (image.array <= hi)
    np.testing.assert_array_equal(inside_after, inside_before)
    # writing back restores the stored MONOCHROME1 values
    again = save_image(tmp_path / "again.dcm", image.array, like=image)
    from pydicom import dcmread

    np.testing.assert_array_equal(dcmread(again).pixel_array, stored)
    assert dcmread(again).PhotometricInterpretation == "MONOCHROME1"


def test_ybr_dicom_reads_as_rgb_once():
    """pydicom 3 converts YBR to RGB itself; converting a second time would shift the colours."""
    ybr = load_image(pydicom_file("SC_rgb_dcmtk_+eb+cy+np.dcm"))  # YBR_FULL_422 JPEG
    rgb = load_image(pydicom_file("SC_rgb_dcmtk_+eb+cr.dcm"))  # the same picture stored as RGB
    assert ybr.meta["converted_from"] == "YBR_FULL_422" and ybr.meta["color"] == "RGB"
    assert np.abs(ybr.array.astype(int) - rgb.array).mean() < 5  # lossy JPEG, same colours
    uncompressed = load_image(pydicom_file("SC_ybr_full_422_uncompressed.dcm"))
    assert np.abs(uncompressed.array.astype(int) - rgb.array).mean() < 5


def test_colour_ct_screenshot_is_not_rescaled_to_hounsfield_units():
    """A CT stored as YBR JPEG is a picture: the modality rescale and HU apply to grayscale only."""
    image = load_image(deid_file("humans/ctbrain1.dcm"))
    assert image.array.shape == (456, 510, 3) and image.array.dtype == np.uint8
    assert "units" not in image.meta and "window" not in image.meta
    assert image.meta["rescale_ignored"] is True
    np.testing.assert_array_equal(image.array[..., 0], image.array[..., 1])  # gray in RGB


def test_multiframe_dicom_gives_the_requested_frame(tmp_path):
    from pydicom import dcmread

    path = deid_file("ultrasounds/ultrasound-multiframe.dcm")
    frames = dcmread(path).pixel_array
    middle = load_image(path)
    assert middle.meta["frames"] == 30 and middle.meta["frame"] == 15
    np.testing.assert_array_equal(middle.array, frames[15])
    first = load_image(path, frame=0)
    np.testing.assert_array_equal(first.array, frames[0])
    assert first.meta["frame"] == 0
    for bad in (30, -1):
        with pytest.raises(InvalidImageError, match=rf"frame {bad} is outside 0\.\.29") as info:
            load_image(path, frame=bad)
        assert "ultrasound-multiframe.dcm" in str(info.value)
    written = load_image(save_image(tmp_path / "one.dcm", first.array, like=first))
    np.testing.assert_array_equal(written.array, frames[0])
    assert written.meta["frames"] == 1
    single = load_image(pydicom_file("CT_small.dcm"))
    assert (single.meta["frame"], single.meta["frames"]) == (0, 1)
    with pytest.raises(InvalidImageError, match=r"frame 1 is outside 0\.\.0"):
        load_image(pydicom_file("CT_small.dcm"), frame=1)


def test_compressed_and_big_endian_dicom_are_written_back_uncompressed(tmp_path):
    for name in ("J2K_pixelrep_mismatch.dcm", "ExplVR_BigEnd.dcm"):
        image = load_image(pydicom_file(name))
        again = load_image(save_image(tmp_path / name, image.array, like=image))
        np.testing.assert_array_equal(again.array, image.array)
        assert again.meta.get("window") == image.meta.get("window")


def test_cli_corrupts_one_frame_of_a_cine_loop(tmp_path):
    from click.testing import CliRunner

    from medfm_robust_plugin.cli import main

    path = deid_file("ultrasounds/ultrasound-multiframe.dcm")
    out = tmp_path / "frame3.png"
    result = CliRunner().invoke(
        main, ["corrupt", str(path), str(out), "-c", "gaussian_noise", "-s", "1", "--frame", "3"]
    )
    assert result.exit_code == 0, result.output
    assert load_image(out).array.shape == (600, 800, 3)
    bad = CliRunner().invoke(
        main, ["corrupt", str(path), str(out), "-c", "gaussian_noise", "--frame", "99"]
    )
    assert bad.exit_code != 0 and "outside 0..29" in bad.output


def test_a_zero_pixel_spacing_is_read_as_unknown(tmp_path):
    """Some writers store PixelSpacing 0 for 'not measured' (pydicom-data's chest CR does): the
    image loads without a spacing, says why, and corrupts as an image of unknown spacing."""
    from medfm_robust_plugin import corrupt

    stored = np.random.default_rng(8).integers(0, 4000, (48, 40)).astype(np.uint16)
    write_dicom(tmp_path / "cr.dcm", stored, 1.0, 0.0, modality="CR", spacing=(0.0, 0.0))
    image = load_image(tmp_path / "cr.dcm")
    assert image.spacing is None and "is not a size" in image.meta["spacing_dropped"]
    out = corrupt(image, "xray_quantum_noise", 3, seed=0)
    assert out.shape == stored.shape and not np.array_equal(out, stored)
