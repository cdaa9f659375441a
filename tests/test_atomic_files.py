"""Files written whole or not at all: the one temporary-file-and-rename helper the package uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from medfm_robust_plugin.atomic_files import replacing, write_atomic


def test_write_atomic_creates_the_folder_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "view.png"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["view.png"]


def test_the_temporary_file_sits_beside_the_target_with_its_extension(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    with replacing(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".tmp-") and tmp.suffix == ".png"
        assert not target.exists()  # nothing is visible under the final name before the end
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and not tmp.exists()
    with replacing(tmp_path / "r.json", prefix=".abc-", suffix=".tmp") as tmp:
        assert tmp.name.startswith(".abc-") and tmp.name.endswith(".tmp")


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_outputs_get_the_umask_permissions_and_private_files_stay_private(tmp_path: Path) -> None:
    import os
    import stat

    from medfm_robust_plugin.atomic_files import replacing

    old = os.umask(0o022)
    try:
        with replacing(tmp_path / "shared.png", readable=True) as tmp:
            tmp.write_bytes(b"x")
        with replacing(tmp_path / "private.json") as tmp:
            tmp.write_bytes(b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "shared.png").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
