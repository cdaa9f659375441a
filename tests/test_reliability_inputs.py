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
        "    seconds = time.perf_counter() - start\n"
        # VmHWM is this process's own peak; ru_maxrss would carry the parent's (pytest's) peak,
        # which Linux keeps across fork and exec
        "    try:\n"
        "        status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "        peak = int(status.split()[0])\n"
        "    except (OSError, IndexError):\n"
        "        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    print(seconds, peak)\n"
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


# ---------------------------------------------------------------------- paths outside the data root


def _loader(name: str):
    from medfm_robust_plugin.plugins import get_registry

    return get_registry().get("datasets", name)


def _qa_table(folder: Path, image: str) -> Path:
    from . import fixtures_datasets as fx

    fx.write(folder / "imgs/inside.png", fx.rgb_image(seed=1))
    rows = [
        {
            "id": "ok",
            "image": "imgs/inside.png",
            "question": "Q?",
            "A": "x",
            "B": "y",
            "answer": "A",
        },
        {"id": "q-evil", "image": image, "question": "Q?", "A": "x", "B": "y", "answer": "B"},
    ]
    return fx.write_csv(folder / "table.csv", rows)


@pytest.fixture
def secret(tmp_path) -> Path:
    """An image outside every data root of these tests."""
    from . import fixtures_datasets as fx

    return fx.write(tmp_path / "private" / "secret.png", fx.rgb_image(seed=9))


@pytest.mark.parametrize("kind", ["dotdot", "absolute"])
def test_a_table_row_pointing_outside_the_data_root_is_refused_naming_sample_and_path(
    tmp_path, secret, kind, monkeypatch
):
    from medfm_robust_plugin.data.loaders.base import OutsideDataRootError

    monkeypatch.delenv("MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT", raising=False)
    value = "../private/secret.png" if kind == "dotdot" else str(secret)
    table = _qa_table(tmp_path / "data", value)
    with pytest.raises(OutsideDataRootError) as info:
        _loader("qa_table").load(table)
    message = str(info.value)
    assert "'q-evil'" in message and "secret.png" in message
    assert str(secret.resolve()) in message and "--allow-outside-data-root" in message

    allowed = _loader("qa_table").load(table, allow_outside_data_root=True)
    assert [s.id for s in allowed.samples] == ["ok", "q-evil"]
    monkeypatch.setenv("MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT", "1")
    assert len(_loader("qa_table").load(table).samples) == 2


def test_a_symlink_inside_the_root_is_followed_to_where_it_points(tmp_path, secret):
    from medfm_robust_plugin.data.loaders.base import OutsideDataRootError

    from . import fixtures_datasets as fx

    root = tmp_path / "own"
    fx.write(root / "images/a.png", fx.rgb_image(seed=1))
    fx.write(root / "masks/a.png", fx.rect_mask(4, 4, 12, 12))
    fx.write(root / "masks/b.png", fx.rect_mask(4, 4, 12, 12))
    (root / "images/b.png").symlink_to(secret)
    with pytest.raises(OutsideDataRootError, match=r"sample 'b': image path .*b\.png"):
        _loader("image_folder").load(root)
    loaded = _loader("image_folder").load(root, allow_outside_data_root=True)
    assert [s.id for s in loaded.samples] == ["a", "b"]

    # a data root that is itself a symlink is fine: both sides are resolved
    (tmp_path / "link").symlink_to(tmp_path / "data_elsewhere", target_is_directory=True)
    fx.write(tmp_path / "data_elsewhere/images/a.png", fx.rgb_image(seed=1))
    fx.write(tmp_path / "data_elsewhere/masks/a.png", fx.rect_mask(4, 4, 12, 12))
    assert [s.id for s in _loader("image_folder").load(tmp_path / "link").samples] == ["a"]


def test_every_dataset_file_loader_checks_its_paths(tmp_path, secret):
    """TSV image_path, OmniMedVQA image_path, grounding image and mask, R2Gen image_path."""
    import json

    from medfm_robust_plugin.data.loaders.base import OutsideDataRootError

    from . import fixtures_datasets as fx

    tsv = fx.write_csv(
        tmp_path / "tsv/bench.tsv",
        [
            {
                "index": "t1",
                "image_path": str(secret),
                "question": "Q?",
                "A": "a",
                "B": "b",
                "answer": "A",
            }
        ],
        delimiter="\t",
    )
    fx.make_omnimedvqa(tmp_path / "omni")
    qa = tmp_path / "omni/OmniMedVQA/QA_information/Open-access/ACRIMA.json"
    items = json.loads(qa.read_text())
    items[0]["image_path"] = "../../private/secret.png"
    qa.write_text(json.dumps(items))
    grounding = tmp_path / "grounding"
    fx.write(grounding / "images/a.png", fx.rgb_image(seed=1))
    fx.write_text(
        grounding / "G_test.json",
        json.dumps(
            [
                {
                    "id": "g1",
                    "image": "images/a.png",
                    "sentence": "the lesion",
                    "conversations": [{"from": "gpt", "value": f"<mask>{secret}</mask>"}],
                },
            ]
        ),
    )
    r2gen = tmp_path / "r2gen"
    fx.write(r2gen / "images/s1/0.png", fx.rgb_image(seed=1))
    fx.write_text(
        r2gen / "annotation.json",
        json.dumps(
            {"test": [{"id": "s1", "report": "Clear.", "image_path": ["../../private/secret.png"]}]}
        ),
    )
    cases = [
        ("vlmeval_tsv", tsv, {}, "'t1'", "image"),
        ("omnimedvqa", tmp_path / "omni/OmniMedVQA", {}, "'ACRIMA_0001'", "image"),
        ("mecovqa_g_plus", grounding, {}, "'g1'", "mask"),
        ("iu_xray", r2gen, {}, "'s1'", "image"),
    ]
    for name, root, options, sample, what in cases:
        with pytest.raises(OutsideDataRootError) as info:
            _loader(name).load(root, **options)
        assert sample in str(info.value) and f"{what} path" in str(info.value), name
        assert "secret.png" in str(info.value), name


def test_folders_named_by_options_count_as_data_root(tmp_path):
    from . import fixtures_datasets as fx

    fx.make_omnimedvqa(tmp_path / "omni")
    sources = tmp_path / "omni" / "sources"
    assert sources.is_dir()
    moved = tmp_path / "elsewhere_sources"
    sources.rename(moved)
    result = _loader("omnimedvqa").load(
        tmp_path / "omni/OmniMedVQA", split="restricted", restricted_root=str(moved)
    )
    assert [s.id for s in result.samples] == ["Chest_CT_0001"]


def test_a_hub_path_cell_outside_image_root_is_refused(tmp_path, secret):
    datasets = pytest.importorskip("datasets")
    from medfm_robust_plugin.data.loaders.base import OutsideDataRootError

    from . import fixtures_datasets as fx

    images = tmp_path / "hub_images"
    fx.write(images / "a.png", fx.rgb_image(seed=1))
    rows = datasets.Dataset.from_dict(
        {
            "image_path": ["a.png", "../private/secret.png"],
            "caption": ["one", "two"],
            "id": ["h1", "h2"],
        }
    )
    with pytest.raises(OutsideDataRootError, match="sample 'h2'"):
        _loader("hf_dataset").load(hub_dataset=rows, image_root=str(images))
    first = _loader("hf_dataset").load(hub_dataset=rows.select([0]), image_root=str(images))
    assert [s.id for s in first.samples] == ["h1"]


def medfm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("MEDFM_ROBUST_ALLOW_OUTSIDE_DATA_ROOT", None)
    return subprocess.run(
        [sys.executable, "-m", "medfm_robust_plugin", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_the_commands_that_load_datasets_refuse_outside_paths_unless_allowed(tmp_path):
    import json

    from . import fixtures_datasets as fx

    fx.make_omnimedvqa(tmp_path)
    qa = tmp_path / "OmniMedVQA/QA_information/Open-access/ACRIMA.json"
    items = json.loads(qa.read_text())
    items[0]["image_path"] = "../elsewhere.png"
    qa.write_text(json.dumps(items))
    fx.write(tmp_path / "elsewhere.png", fx.rgb_image(seed=5))
    root = str(tmp_path / "OmniMedVQA")
    run = ["run", "--task", "MedFMRobust-VQA", "--model", "baseline:majority", "--limit", "1"]
    run += ["--data-root", root, "--dry-run", "--out", str(tmp_path / "runs")]

    assert_one_line_error(medfm(*run), "sample 'ACRIMA_0001'", "elsewhere.png", "outside")
    allowed = medfm(*run, "--allow-outside-data-root")
    assert allowed.returncode == 0, allowed.stderr
    assert "1 samples" in allowed.stdout

    show = ["tasks", "show", "MedFMRobust-VQA", "--data-root", root, "--json"]
    refused = json.loads(medfm(*show).stdout)["data"]
    assert not refused["available"] and "ACRIMA_0001" in refused["why"]
    assert json.loads(medfm(*show, "--allow-outside-data-root").stdout)["data"]["available"]


# ---------------------------------------------------------------------- CLI misuse: one line, exit 1


@pytest.fixture
def images(tmp_path) -> Path:
    save_image(tmp_path / "in.png", np.full((32, 32), 100, np.uint8))
    save_image(tmp_path / "tiny.png", np.full((5, 5), 100, np.uint8))
    return tmp_path


def test_corrupt_refuses_a_negative_seed(images):
    done = medfm("corrupt", "in.png", "out.png", "-c", "gaussian_noise", "--seed", "-1", cwd=images)
    assert_one_line_error(done, "--seed -1")
    assert not (images / "out.png").exists()


def test_corrupt_in_ssim_mode_refuses_an_image_under_7_by_7(images):
    done = medfm(
        "corrupt", "tiny.png", "o.png", "-c", "gaussian_noise", "--mode", "ssim", cwd=images
    )
    assert_one_line_error(done, "tiny.png", "7 x 7", "5 x 5", "--mode table")
    assert not (images / "o.png").exists()


def test_corrupt_checks_the_params_folder_before_writing_the_image(images):
    args = ["corrupt", "in.png", "out.png", "-c", "gaussian_noise", "--params", "nodir/p.json"]
    assert_one_line_error(medfm(*args, cwd=images), "nodir", "does not exist")
    assert not (images / "out.png").exists()  # nothing written


def test_corrupt_never_overwrites_its_input_unless_forced(images):
    before = (images / "in.png").read_bytes()
    (images / "sub").mkdir()
    for out in ("in.png", "sub/../in.png", str(images / "in.png")):
        done = medfm("corrupt", "in.png", out, "-c", "gaussian_noise", cwd=images)
        assert_one_line_error(done, "input file itself", "--force")
        assert (images / "in.png").read_bytes() == before
    (images / "link.png").symlink_to(images / "in.png")
    assert_one_line_error(
        medfm("corrupt", "in.png", "link.png", "-c", "gaussian_noise", cwd=images)
    )
    forced = medfm("corrupt", "in.png", "in.png", "-c", "gaussian_noise", "--force", cwd=images)
    assert forced.returncode == 0, forced.stderr
    assert (images / "in.png").read_bytes() != before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--tile", "0"], ["tile 0", "16 to 1024"]),
        (["--tile", "100000"], ["tile 100000"]),
        (["-o", "x.xyz"], ["x.xyz", ".png"]),
        (["--modality", "bogus"], ["unknown modality 'bogus'", "ct"]),
        (["--modality", "mr"], ["did you mean mri"]),
        (["--seed", "-3"], ["--seed -3"]),
        (["tiny.png", "--mode", "ssim"], ["tiny.png", "7 x 7"]),
        (["in.png", "-o", "in.png"], ["IMAGE itself"]),
    ],
)
def test_preview_misuse_is_one_line_of_error(images, args, words):
    if "-o" not in args:
        args = [*args, "-o", "grid.png"]
    done = medfm("preview", *args, "--corruptions", "gaussian_noise", cwd=images)
    assert_one_line_error(done, *words)
    assert not (images / "grid.png").exists() and not (images / "x.xyz").exists()


def test_preview_of_a_known_modality_still_works(images):
    done = medfm(
        "preview",
        "--modality",
        "ct",
        "--corruptions",
        "gaussian_noise",
        "-o",
        "g.png",
        "--tile",
        "16",
        "--severities",
        "1",
        cwd=images,
    )
    assert done.returncode == 0, done.stderr
    assert load_image(images / "g.png").array.shape[0] > 16


# ---------------------------------------------------------------------- piped listings keep whole lines


def _piped_rows(*args: str) -> list[list[str]]:
    done = medfm(*args)  # stdout is a pipe, COLUMNS=80
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("listing", "key"),
    [
        (["tasks", "list"], "task"),
        (["models", "list"], "name"),
        (["corruptions", "list"], "name"),
        (["corruptions", "suites"], "suite"),
    ],
)
def test_piped_lists_keep_one_item_per_line_with_whole_names(listing, key):
    import json

    names = [item[key] for item in json.loads(medfm(*listing, "--json").stdout)]
    header, *rows = _piped_rows(*listing)
    assert header[0] == key
    assert [row[0] for row in rows] == names
    assert all(len(row) == len(header) for row in rows)


def test_the_longest_task_name_survives_grep():
    done = subprocess.run(
        f"{sys.executable} -m medfm_robust_plugin tasks list | grep MedFMRobust-Mini-Seg-Lite",
        shell=True,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=120,
    )
    assert done.stdout.startswith("MedFMRobust-Mini-Seg-Lite\tsegmentation\t")


def test_plugins_piped_is_one_line_per_plugin():
    import json

    listed = json.loads(medfm("plugins", "--json").stdout)["plugins"]
    header, *rows = _piped_rows("plugins")
    assert header == ["plugin", "registered"]
    assert [row[0] for row in rows] == [p["plugin"] for p in listed]


def test_a_terminal_still_gets_a_drawn_table():
    import pty

    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "200"}
    with subprocess.Popen(
        [sys.executable, "-m", "medfm_robust_plugin", "tasks", "list"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=120)
    os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "MedFMRobust-Mini-Seg-Lite" in text and "\t" not in text
    assert "━" in text or "─" in text  # rich's box lines
