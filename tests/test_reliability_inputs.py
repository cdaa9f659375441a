"""Hostile and careless inputs: decompression bombs, paths outside the data root, CLI misuse and
piped listings. Each one gets one clear error (or whole lines), never a hang, a huge allocation or
a traceback."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from medfm_robust_plugin.errors import InvalidImageError
from medfm_robust_plugin.image import load_image, raster_header, save_image

BOMB_SIDE = 14000  # 14000 x 14000 16-bit RGBA: 3.1 GB decoded, above PIL's own error limit


# ---------------------------------------------------------------------- decompression bombs


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body))
        + kind
        + body
        + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def write_zero_png(path: Path, height: int, width: int) -> Path:
    """A valid all-zero 16-bit RGBA PNG of any size, written without holding its pixels.

    Every row is a filter byte 0 and zeros, so the deflate stream is one compressed chunk of
    zeros repeated (a full flush resets the compressor, making the repeats byte-identical).
    """
    row = 1 + width * 8
    total = row * height
    chunk = row * 100
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(chunk)) + deflate.flush(zlib.Z_FULL_FLUSH)
    repeats, rest = divmod(total, chunk)
    tail = deflate.compress(bytes(rest)) + deflate.flush(zlib.Z_FINISH)
    adler = (total % 65521) << 16 | 1  # adler32 of `total` zero bytes
    stream = b"\x78\xda" + block * repeats + tail + struct.pack(">I", adler)
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return write_zero_png(tmp_path_factory.mktemp("bomb") / "bomb.png", BOMB_SIDE, BOMB_SIDE)


def test_the_crafted_png_is_a_real_image_of_that_size(tmp_path):
    small = write_zero_png(tmp_path / "small.png", 300, 201)
    array = load_image(small).array
    assert array.shape == (300, 201, 4) and array.dtype == np.uint16 and not array.any()


def test_a_png_bomb_is_refused_from_its_header_before_any_decoding(bomb, monkeypatch):
    import cv2

    assert bomb.stat().st_size < 8_000_000

    def no_decoding(*args, **kwargs):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    monkeypatch.delenv("MEDFM_ROBUST_MAX_PIXELS", raising=False)
    start = time.perf_counter()
    with pytest.raises(InvalidImageError) as info:
        load_image(bomb)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "bomb.png" in message and "14000 x 14000" in message
    assert "196,000,000" in message and "120000000" in message
    assert "MEDFM_ROBUST_MAX_PIXELS=196000000" in message


def test_a_png_bomb_is_refused_without_a_big_allocation(bomb):
    """In a fresh process, as the CLI reads it: peak memory stays far below the 3.1 GB decode."""
    code = (
        "import resource, sys, time\n"
        "from medfm_robust_plugin.image import load_image\n"
        "from medfm_robust_plugin.errors import InvalidImageError\n"
        "start = time.perf_counter()\n"
        "try:\n"
        f"    load_image({str(bomb)!r})\n"
        "except InvalidImageError:\n"
        "    print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MEDFM_ROBUST_MAX_PIXELS"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    seconds, peak_kib = done.stdout.split()
    assert float(seconds) < 2.0
    assert int(peak_kib) < 600 * 1024  # a decode would need 3.1 GB


def test_the_header_of_a_bomb_is_read_past_pils_own_limit(bomb):
    """Raising our limit above PIL's (178 Mpx) must not make the size unknown."""
    assert raster_header(bomb) == (BOMB_SIDE, BOMB_SIDE)
    assert raster_header(bomb.read_bytes()) == (BOMB_SIDE, BOMB_SIDE)


def test_an_encoded_bomb_in_a_dataset_cell_is_refused_before_decoding(bomb):
    import base64

    from medfm_robust_plugin.data.loaders.sources import base64_image, encoded_image

    start = time.perf_counter()
    with pytest.raises(InvalidImageError, match="14000 x 14000"):
        encoded_image(bomb.read_bytes())
    with pytest.raises(InvalidImageError, match="exceeds the limit"):
        base64_image(base64.b64encode(bomb.read_bytes()).decode())
    assert time.perf_counter() - start < 3.0


def _dicom(path: Path, rows: int, columns: int, frames: int = 1, pixels: bytes = b"") -> Path:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels or bytes(rows * columns * 2 * frames)
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_a_dicom_over_the_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    # the header claims 30000 x 30000 pixels over 4 bytes of pixel data: never decoded
    big = _dicom(tmp_path / "big.dcm", 30000, 30000, pixels=b"\0\0\0\0")
    with pytest.raises(InvalidImageError) as info:
        load_image(big)
    assert "big.dcm" in str(info.value) and "30000 x 30000" in str(info.value)
    assert "MEDFM_ROBUST_MAX_PIXELS" in str(info.value)

    cine = _dicom(tmp_path / "cine.dcm", 40, 50, frames=3)
    assert load_image(cine).array.shape == (40, 50)
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", "1999")
    with pytest.raises(InvalidImageError, match=r"cine.dcm' \(3 frames.*40 x 50 pixels"):
        load_image(cine)


def test_a_nifti_slice_is_checked_from_the_header_and_read_alone(tmp_path, monkeypatch):
    import nibabel as nib

    volume = np.arange(32 * 40 * 300, dtype=np.int16).reshape(32, 40, 300)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(path))
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", str(32 * 40))  # a slice fits, the volume not
    image = load_image(path, slice_index=7)
    assert image.array.dtype == np.int16
    assert np.array_equal(image.array, volume[:, :, 7])
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", str(32 * 40 - 1))
    with pytest.raises(InvalidImageError, match=r"ct.nii.gz' \(NIfTI of shape \(32, 40, 300\)\)"):
        load_image(path)


def test_the_limit_is_one_setting_for_every_format(tmp_path, monkeypatch):
    png = save_image(tmp_path / "a.png", np.zeros((30, 40), np.uint8))
    tif = save_image(tmp_path / "a.tif", np.zeros((30, 40, 3), np.float32))  # PIL cannot open it
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", "1200")
    assert load_image(png).array.shape == (30, 40)
    assert load_image(tif).array.shape == (30, 40, 3)
    monkeypatch.setenv("MEDFM_ROBUST_MAX_PIXELS", "1199")
    for path in (png, tif):
        with pytest.raises(InvalidImageError, match="30 x 40 pixels"):
            load_image(path)
