"""Property tests: any shape, dtype, channel count and severity comes back as it went in."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medfm_robust_plugin import corrupt, list_corruptions
from medfm_robust_plugin.engine import get_corruption

NAMES = sorted(c.name for c in list_corruptions())
DTYPES = [np.uint8, np.uint16, np.int16, np.float32, np.float64]


@st.composite
def images(draw):
    h = draw(st.integers(16, 72))
    w = draw(st.integers(16, 72))
    channels = draw(st.sampled_from([None, 1, 3, 4]))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    if dtype == np.uint8:
        array = rng.integers(0, 256, shape, dtype=np.uint8)
    elif dtype == np.uint16:
        array = rng.integers(0, draw(st.sampled_from([4096, 65536])), shape).astype(np.uint16)
    elif dtype == np.int16:
        array = rng.integers(-1024, 3000, shape).astype(np.int16)
    else:
        scale = draw(st.sampled_from([1.0, 1000.0]))
        array = (rng.random(shape) * scale).astype(dtype)
    return array


@settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    image=images(),
    name=st.sampled_from(NAMES),
    severity=st.floats(1.0, 5.0),
    seed=st.integers(0, 2**31),
)
def test_any_image_round_trips(image, name, severity, seed):
    out = corrupt(image, name, severity=severity, seed=seed)
    assert out.dtype == image.dtype and out.shape == image.shape
    assert np.isfinite(out.astype(np.float64)).all()
    lo, hi = (0, 255) if image.dtype == np.uint8 else (min(0, image.min()), image.max())
    if image.dtype.kind == "f" and image.max() <= 1:
        lo, hi = 0.0, 1.0
    if get_corruption(name).domain == "unit" or (lo, hi) == (0.0, 1.0):
        # presented-image corruptions stay inside the clean range (the bare array's window);
        # physical ones may leave it (metal above bone) within the dtype
        assert out.min() >= lo and out.max() <= hi
    if image.ndim == 3 and image.shape[2] == 4:
        np.testing.assert_array_equal(out[..., 3], image[..., 3])
    again = corrupt(image, name, severity=severity, seed=seed)
    assert again.tobytes() == out.tobytes()
