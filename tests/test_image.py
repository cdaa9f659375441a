"""Reading, checking and round-tripping images of every supported kind."""

from __future__ import annotations

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


def write_dicom(path, stored: np.ndarray, slope: float, intercept: float) -> None:
    """A minimal CT DICOM file with a rescale, built with pydicom."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.PixelSpacing = [0.7, 0.7]
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
