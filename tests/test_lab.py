"""Wrapping a lab's own data: PyTorch datasets, Hugging Face datasets, plain lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medfm_robust_plugin.data.phantoms import dermoscopy, mri_slice
from medfm_robust_plugin.data.sample import Sample
from medfm_robust_plugin.lab import CorruptedDataset, corrupt_arrays, hf_corrupt
from medfm_robust_plugin.tasks import Condition
from medfm_robust_plugin.views import CorruptedViews

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lab_pipeline.py"


def test_lab_pipeline_example_runs_and_degrades_with_severity():
    done = subprocess.run([sys.executable, str(EXAMPLE), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["clean"] > 0.9
    noise = [results[f"gaussian_noise_s{k}"] for k in (1, 3, 5)]
    assert results["clean"] >= noise[0] > noise[1] > noise[2]
    assert len(results) == 1 + 4 * 3


class Tensors(torch.utils.data.Dataset):
    """Items as a lab's transforms leave them: C x H x W float tensors plus a label."""

    def __init__(self):
        self.images = [
            torch.from_numpy(dermoscopy(48, seed=k).image).permute(2, 0, 1).float() / 255
            for k in range(6)
        ]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], index % 2


def test_torch_dataset_keeps_layout_dtype_and_labels():
    wrapped = CorruptedDataset(
        Tensors(), "gaussian_noise", 3, dataset_name="derm", id_of=lambda i, item: f"c{i}"
    )
    image, label = wrapped[3]
    original, original_label = Tensors()[3]
    assert image.shape == original.shape == (3, 48, 48) and image.dtype == torch.float32
    assert label == original_label and not torch.equal(image, original)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


def test_dataloader_workers_do_not_change_the_images():
    wrapped = CorruptedDataset(Tensors(), "shot_noise", 4, id_of=lambda i, item: f"c{i}")
    serial = [b[0] for b in torch.utils.data.DataLoader(wrapped, batch_size=2)]
    parallel = [b[0] for b in torch.utils.data.DataLoader(wrapped, batch_size=2, num_workers=2)]
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a, b)


def test_same_pixels_as_the_hosts_view_layer():
    images = [mri_slice(64, seed=k).image for k in range(3)]
    ours = corrupt_arrays(
        images, "gaussian_noise", 2, ids=["a", "b", "c"], dataset_name="brain", seed=4
    )
    views = CorruptedViews(global_seed=4)
    for image, item_id, out in zip(images, "abc", ours, strict=True):
        view = views.get(Sample(item_id, "brain", "", image), Condition("gaussian_noise", 2))
        np.testing.assert_array_equal(out, view.image)
        assert out.dtype == np.float32


def test_dict_items_and_pil_images():
    items = [{"image": Image.fromarray(dermoscopy(40, seed=k).image), "label": k} for k in range(2)]
    wrapped = CorruptedDataset(items, "contrast", 5)
    out = wrapped[1]
    assert (
        isinstance(out["image"], Image.Image) and out["image"].mode == "RGB" and out["label"] == 1
    )
    assert np.asarray(out["image"]).std() < np.asarray(items[1]["image"]).std()


def test_hugging_face_map_and_transform():
    import datasets

    rows = {
        "image": [Image.fromarray(dermoscopy(32, seed=k).image) for k in range(4)],
        "case_id": [f"case{k}" for k in range(4)],
    }
    ds = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    mapped = ds.map(hf_corrupt("gaussian_noise", 3, id_column="case_id"), batched=True)
    transformed = ds.with_transform(hf_corrupt("gaussian_noise", 3, id_column="case_id"))
    for k in range(4):
        a = np.asarray(mapped[k]["image"])
        b = np.asarray(transformed[k]["image"])
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, np.asarray(ds[k]["image"]))
    with pytest.raises(ValueError, match="stable ids"):
        ds.map(hf_corrupt("gaussian_noise", 3), batched=True)
    indexed = ds.map(hf_corrupt("gaussian_noise", 3), batched=True, with_indices=True)
    assert np.asarray(indexed[0]["image"]).shape == (32, 32, 3)
