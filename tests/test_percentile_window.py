"""The presentation's robust percentiles are np.percentile's, bit for bit, however they are found."""

from __future__ import annotations

import numpy as np
import pytest

from medfm_robust_plugin.data.phantoms import mri_slice
from medfm_robust_plugin.presentation import (
    PERCENTILES,
    SELECT_MIN_SIZE,
    percentile_window,
    percentiles,
)


def _same(array: np.ndarray, q=PERCENTILES) -> bool:
    """Assert ``percentiles`` equals np.percentile; return whether it selected (no fallback)."""
    expected = np.percentile(array, q)
    fallbacks = []
    with pytest.MonkeyPatch.context() as patch:
        original = np.percentile

        def counting(*args, **kwargs):
            fallbacks.append(args)
            return original(*args, **kwargs)

        patch.setattr(np, "percentile", counting)
        got = percentiles(array, q)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected), (array.dtype, array.shape, got, expected)
    return not fallbacks


def _arrays(seed: int):
    rng = np.random.default_rng(seed)
    big = (160, 150)  # above SELECT_MIN_SIZE: the selection path
    assert big[0] * big[1] >= SELECT_MIN_SIZE
    yield rng.random(big, dtype=np.float32)
    yield rng.random(big)  # float64
    yield rng.standard_normal(big).astype(np.float32) * 1e4
    yield rng.integers(-32768, 32768, big).astype(np.int16)  # the extremes: b - a wraps
    yield rng.integers(0, 65536, big).astype(np.uint16)
    yield rng.integers(0, 4096, big).astype(np.int32)
    yield rng.integers(0, 3, big).astype(np.uint16)  # nearly all ties
    yield rng.integers(0, 7, big).astype(np.float32) / 7
    yield np.full(big, 3.25, np.float32)  # constant
    yield rng.random((*big, 3), dtype=np.float32)  # RGB: all channels together
    yield rng.integers(0, 256, (*big, 3)).astype(np.uint8)
    sparse = np.zeros(big, np.float32)  # a background of zeros, a few bright pixels
    sparse.flat[rng.choice(sparse.size, 50, replace=False)] = rng.random(50, dtype=np.float32)
    yield sparse
    yield -sparse  # the ties at the top
    yield np.sort(rng.random(big[0] * big[1], dtype=np.float32)).reshape(big)  # ordered pixels
    yield np.tile(np.arange(65, dtype=np.float32), big[0] * big[1] // 65 + 1)[: big[0] * big[1]]
    yield rng.random(7, dtype=np.float32)  # tiny: np.percentile itself
    yield rng.random((3, 4), dtype=np.float32)
    yield np.ones(1, np.float64)


@pytest.mark.parametrize("seed", range(6))
def test_percentiles_are_numpys_bit_for_bit(seed):
    selected = []
    for array in _arrays(seed):
        selected.append(_same(array))
        assert not _same(array, (0.0, 50.0, 100.0))  # the 100th (index n - 1) takes np.percentile
        _same(array, (1.0, 25.0, 99.0))
    # every large array but the one built to defeat a strided sample (period 65) is selected
    assert selected == [True] * 14 + [False] * 4


def test_mr_phantoms_and_an_infinite_value():
    for size in (128, 256, 512):
        assert _same((mri_slice(size, seed=size).image / 1000.0).astype(np.float32))
    image = np.random.default_rng(1).random((200, 200), dtype=np.float32)
    image[5, 5] = np.inf
    assert _same(image)
    image[7, 7] = np.nan  # numpy answers NaN; so do we
    assert np.isnan(percentiles(image, PERCENTILES)).all()


def test_the_window_is_numpys_percentiles():
    rng = np.random.default_rng(3)
    image = rng.random((256, 256), dtype=np.float32)
    assert percentile_window(image) == tuple(float(v) for v in np.percentile(image, PERCENTILES))
    rgba = rng.random((256, 256, 4), dtype=np.float32)
    expected = tuple(float(v) for v in np.percentile(rgba[..., :3], PERCENTILES))
    assert percentile_window(rgba) == expected  # alpha is not part of the picture
    assert percentile_window(np.zeros((256, 256), np.float32)) is None  # flat
