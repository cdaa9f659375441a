"""SAM, MedSAM and SAM-Med2D wrappers, run on tiny random-weight models built here (no downloads)."""

from __future__ import annotations

import cv2  # noqa: E402
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: E402
import transformers

from medfm_robust_plugin.models import ModelError, PromptableSegmenter, load_model, resolve  # noqa: E402
from medfm_robust_plugin.models.sam_convert import (  # noqa: E402
    hf_to_original,
    original_to_hf,
    sam_config_from_original,
)
from medfm_robust_plugin.models.segmenters import (  # noqa: E402
    SAM_PIXEL_MEAN,
    SAM_PIXEL_STD,
    MedSamSegmenter,
    SamMed2DSegmenter,
    best_mask_logits,
    read_prompts,
)

INPUT_SIZE = 64  # the tiny encoder's square input; the embedding grid is 4 x 4


def tiny_config() -> transformers.SamConfig:
    """A SAM small enough to run in milliseconds: 2 vision blocks (one windowed, one global)."""
    return transformers.SamConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=INPUT_SIZE,
            patch_size=16,
            output_channels=32,
            mlp_dim=64,
            window_size=2,
            global_attn_indexes=[1],
            num_pos_feats=16,
        ),
        prompt_encoder_config=dict(
            hidden_size=32, image_size=INPUT_SIZE, patch_size=16, mask_input_channels=4
        ),
        # layer_norm_eps as in segment_anything's decoder, so that converted checkpoints match.
        mask_decoder_config=dict(
            hidden_size=32,
            mlp_dim=64,
            num_hidden_layers=2,
            iou_head_hidden_dim=32,
            layer_norm_eps=1e-5,
        ),
    )


def tiny_model(seed: int = 0, adapters: bool = False):
    torch.manual_seed(seed)
    if adapters:
        from medfm_robust_plugin.models.sam_med2d import build_sam_med2d

        model = build_sam_med2d(tiny_config())
    else:
        model = transformers.SamModel(tiny_config())
    # Random, non-trivial values everywhere (some parameters start at zero or one).
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    """A save_pretrained directory with the tiny model and a processor sized to it."""
    path = tmp_path_factory.mktemp("tiny-sam")
    tiny_model().save_pretrained(path)
    image_processor = transformers.SamImageProcessorPil(
        size={"longest_edge": INPUT_SIZE},
        pad_size={"height": INPUT_SIZE, "width": INPUT_SIZE},
        mask_size={"longest_edge": INPUT_SIZE // 4},
        mask_pad_size={"height": INPUT_SIZE // 4, "width": INPUT_SIZE // 4},
    )
    transformers.SamProcessor(image_processor=image_processor).save_pretrained(path)
    return path


def sample_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uint8 rgb": rng.integers(0, 256, (40, 56, 3), dtype=np.uint8),
        "uint16 gray": rng.integers(0, 4096, (50, 30), dtype=np.uint16),
        "int16 HU": rng.integers(-1000, 1500, (37, 61, 1), dtype=np.int16),
    }


BOXES = np.array([[2, 3, 20, 25], [10, 5, 28, 30], [0, 0, 29, 36]], float)


class Recorder:
    """Forward hooks that record what a module received and returned."""

    def __init__(self, module):
        self.calls: list = []
        self.inputs: list = []
        self.handles = [module.register_forward_hook(self._record, with_kwargs=True)]

    def _record(self, module, args, kwargs, output):
        self.calls.append(output)
        self.inputs.append((args, kwargs))

    def remove(self):
        for handle in self.handles:
            handle.remove()


@pytest.mark.parametrize("name", ["sam", "medsam"])
@pytest.mark.parametrize("kind", list(sample_images()))
def test_masks_are_boolean_at_the_input_size(sam_dir, name, kind):
    segmenter = load_model(f"{name}:{sam_dir}", device="cpu")
    image = sample_images()[kind]
    masks = segmenter.segment(image, boxes=BOXES)
    assert isinstance(segmenter, PromptableSegmenter)
    assert masks.shape == (3, *image.shape[:2]) and masks.dtype == bool
    points = segmenter.segment(image, points=[[[5, 5], [12, 20]]], point_labels=[[1, 0]])
    assert points.shape == (1, *image.shape[:2])


@pytest.mark.parametrize("name", ["sam", "medsam"])
def test_the_image_encoder_runs_once_per_image(sam_dir, name):
    segmenter = load_model(f"{name}:{sam_dir}", device="cpu")
    encoder = Recorder(segmenter.model.vision_encoder)
    first, second = sample_images()["uint8 rgb"], sample_images()["int16 HU"]
    segmenter.segment(first, boxes=BOXES)
    assert len(encoder.calls) == 1  # three boxes, one embedding
    segmenter.segment(first.copy(), boxes=BOXES[:1])
    assert len(encoder.calls) == 1  # same pixels: the cached embedding
    segmenter.segment(second, boxes=BOXES)
    assert len(encoder.calls) == 2
    encoder.remove()


def test_sam_without_a_saved_processor_uses_one_sized_to_the_model(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    segmenter = load_model(f"sam:{tmp_path}", device="cpu")
    masks = segmenter.segment(sample_images()["uint16 gray"], boxes=BOXES[:2])
    assert masks.shape == (2, 50, 30)
    assert segmenter.processor.image_processor.size["longest_edge"] == INPUT_SIZE


def reference_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """MedSAM's resize as documented: bicubic when enlarging, area averaging when shrinking."""
    height, width = rgb.shape[:2]
    if size >= max(height, width):
        flag = cv2.INTER_CUBIC
    else:
        flag = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size, size), interpolation=flag)


@pytest.mark.parametrize("shape", [(40, 56), (100, 90)])  # enlarged / shrunk to 64 x 64
def test_medsam_preprocessing_follows_its_equations(sam_dir, shape):
    segmenter = load_model(f"medsam:{sam_dir}", device="cpu")
    height, width = shape
    image = np.random.default_rng(1).integers(-1000, 2000, shape, dtype=np.int16)
    boxes = np.array([[3.0, 4.0, 30.0, 35.0], [10.0, 12.0, 25.0, 38.0]])
    encoder = Recorder(segmenter.model.vision_encoder)
    prompts = Recorder(segmenter.model.prompt_encoder)
    decoder = Recorder(segmenter.model.mask_decoder)
    masks = segmenter.segment(image, boxes=boxes)

    # Encoder input: raw values resized to S x S (aspect not kept), min-max to [0, 1], no mean/std.
    rgb = np.repeat(image.astype(np.float32)[..., None], 3, axis=2)
    resized = reference_resize(rgb, INPUT_SIZE)
    expected_pixels = (resized - resized.min()) / max(resized.max() - resized.min(), 1e-8)
    pixels = encoder.inputs[0][0][0][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(pixels, expected_pixels, atol=1e-6)
    assert pixels.min() == 0.0 and pixels.max() == pytest.approx(1.0)

    # Box prompts: x * S / W, y * S / H.
    scale = np.array([INPUT_SIZE / width, INPUT_SIZE / height] * 2)
    sent_boxes = prompts.inputs[0][1]["input_boxes"][0].numpy()
    np.testing.assert_allclose(sent_boxes, boxes * scale, rtol=1e-6)

    # Masks: sigmoid of the single low-res mask, bilinear to H x W, threshold 0.5.
    low_res = decoder.calls[0][0][0, :, 0]  # N x h x w, multimask off
    assert decoder.calls[0][0].shape[2] == 1
    probability = F.interpolate(
        torch.sigmoid(low_res)[:, None], (height, width), mode="bilinear", align_corners=False
    )
    np.testing.assert_array_equal(masks, (probability[:, 0] > 0.5).numpy())


def test_sam_med2d_preprocessing_follows_its_predictor(tmp_path):
    model = tiny_model(adapters=True)
    checkpoint = tmp_path / "sam-med2d_b.pth"
    torch.save({"model": hf_to_original(model.state_dict())}, checkpoint)
    segmenter = load_model(f"sam-med2d:{checkpoint}", device="cpu")
    image = sample_images()["uint8 rgb"]  # 40 x 56
    encoder = Recorder(segmenter.model.vision_encoder)
    prompts = Recorder(segmenter.model.prompt_encoder)
    decoder = Recorder(segmenter.model.mask_decoder)
    masks = segmenter.segment(image, boxes=BOXES[:2])

    normalised = (image.astype(np.float32) - SAM_PIXEL_MEAN) / SAM_PIXEL_STD
    expected_pixels = cv2.resize(
        normalised, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_NEAREST
    )
    pixels = encoder.inputs[0][0][0][0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(pixels, expected_pixels, atol=1e-6)
    scale = np.array([INPUT_SIZE / 56, INPUT_SIZE / 40] * 2)
    np.testing.assert_allclose(
        prompts.inputs[0][1]["input_boxes"][0].numpy(), BOXES[:2] * scale, rtol=1e-6
    )
    low_res, iou = decoder.calls[0]
    assert low_res.shape[2] == 3  # multimask: the best predicted IoU is kept
    best = low_res[0, torch.arange(2), iou[0].argmax(dim=1)]
    square = F.interpolate(
        best[:, None], (INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
    )
    full = F.interpolate(square, (40, 56), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(masks, (torch.sigmoid(full[:, 0]) > 0.5).numpy())


def test_medsam_checkpoint_round_trip_gives_the_same_model(sam_dir, tmp_path):
    direct = tiny_model()
    original = hf_to_original(direct.state_dict())
    assert {key.split(".")[0] for key in original} == {
        "image_encoder",
        "prompt_encoder",
        "mask_decoder",
    }
    for key in (
        "image_encoder.blocks.1.norm1.weight",
        "image_encoder.neck.2.weight",
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "prompt_encoder.mask_downscaling.6.bias",
        "mask_decoder.transformer.layers.0.norm4.weight",
        "mask_decoder.output_upscaling.3.weight",
        "mask_decoder.output_hypernetworks_mlps.3.layers.2.weight",
        "mask_decoder.iou_prediction_head.layers.2.bias",
    ):
        assert key in original, key
    assert original_to_hf(original).keys() == direct.state_dict().keys()

    checkpoint = tmp_path / "medsam_vit_b.pth"
    torch.save(original, checkpoint)
    loaded = load_model(f"medsam:{checkpoint}", device="cpu")
    for key, value in direct.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    reference = MedSamSegmenter(direct, name="medsam", device="cpu")
    loaded_logits = Recorder(loaded.model.mask_decoder)
    reference_logits = Recorder(reference.model.mask_decoder)
    for image in sample_images().values():
        np.testing.assert_array_equal(
            loaded.segment(image, boxes=BOXES), reference.segment(image, boxes=BOXES)
        )
        assert torch.equal(loaded_logits.calls[-1][0], reference_logits.calls[-1][0])


def test_sam_med2d_checkpoint_round_trip_gives_the_same_model(tmp_path):
    direct = tiny_model(seed=3, adapters=True)
    original = hf_to_original(direct.state_dict())
    assert "image_encoder.blocks.0.Adapter.spatial.2.weight" in original
    assert "image_encoder.blocks.1.Adapter.channel.0.weight" in original
    checkpoint = tmp_path / "sam-med2d_b.pth"
    torch.save({"model": original}, checkpoint)
    loaded = load_model(f"sam-med2d:{checkpoint}", device="cpu")
    for key, value in direct.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    reference = SamMed2DSegmenter(direct, name="sam-med2d", device="cpu")
    for image in sample_images().values():
        np.testing.assert_array_equal(
            loaded.segment(image, boxes=BOXES), reference.segment(image, boxes=BOXES)
        )
        points = np.array([[[5.0, 6.0]], [[20.0, 15.0]]])
        np.testing.assert_array_equal(
            loaded.segment(image, points=points), reference.segment(image, points=points)
        )


def test_the_config_is_read_off_the_checkpoint_shapes():
    config = sam_config_from_original(hf_to_original(tiny_model().state_dict()))
    vision, decoder = config.vision_config, config.mask_decoder_config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads) == (32, 2, 2)
    assert (vision.image_size, vision.patch_size, vision.window_size) == (INPUT_SIZE, 16, 2)
    assert list(vision.global_attn_indexes) == [1]
    assert (decoder.num_hidden_layers, decoder.iou_head_depth, decoder.num_multimask_outputs) == (
        2,
        3,
        3,
    )
    assert config.prompt_encoder_config.mask_input_channels == 4
    assert decoder.layer_norm_eps == 1e-5  # torch's default, as in segment_anything


def test_adapter_follows_its_equations():
    from medfm_robust_plugin.models.sam_med2d import EncoderAdapter

    torch.manual_seed(0)
    adapter = EncoderAdapter(32).eval()
    with torch.no_grad():
        for parameter in adapter.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.3)
    tokens = torch.randn(2, 4, 4, 32)
    grid = tokens.permute(0, 3, 1, 2)
    gate = torch.sigmoid(
        F.linear(
            F.relu(F.linear(grid.mean((2, 3)), adapter.channel_squeeze.weight)),
            adapter.channel_excite.weight,
        )
    )
    down = F.relu(
        F.conv2d(grid * gate[..., None, None], adapter.spatial_down.weight, stride=2, padding=1)
    )
    up = F.relu(F.conv_transpose2d(down, adapter.spatial_up.weight, stride=2, padding=1))
    expected = F.layer_norm(
        (grid + up).permute(0, 2, 3, 1),
        (32,),
        adapter.layer_norm.weight,
        adapter.layer_norm.bias,
        eps=1e-5,
    )
    with torch.no_grad():
        torch.testing.assert_close(adapter(tokens), expected)


def test_adapter_sits_beside_the_mlp_after_the_attention_residual():
    """SAM-Med2D block: x <- x + attn; then x + MLP(LN2(x)) + Adapter(LN2(x))."""
    adapted = tiny_model(adapters=True)
    plain = transformers.SamModel(tiny_config()).eval()
    plain.load_state_dict(adapted.state_dict(), strict=False)  # same weights, no adapters
    tokens = torch.randn(1, 4, 4, 32)
    for index in range(2):
        block, plain_block = (
            adapted.vision_encoder.layers[index],
            plain.vision_encoder.layers[index],
        )
        norm_input = Recorder(plain_block.layer_norm2)
        with torch.no_grad():
            got = block(tokens)
            without_adapter = plain_block(tokens)
            after_attention = norm_input.inputs[0][0][0]
            expected = without_adapter + block.adapter(block.layer_norm2(after_attention))
        torch.testing.assert_close(got, expected)


def test_best_mask_is_the_highest_predicted_iou():
    logits = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    iou = torch.tensor([[0.1, 0.9, 0.3], [0.8, 0.2, 0.5]])
    best = best_mask_logits(logits, iou)
    torch.testing.assert_close(best, torch.stack([logits[0, 1], logits[1, 0]]))


def test_prompts_are_checked():
    assert read_prompts(boxes=[1, 2, 3, 4]).boxes.shape == (1, 4)
    single = read_prompts(points=[[1, 2], [3, 4]])
    assert single.points.shape == (1, 2, 2) and single.labels.tolist() == [[1, 1]]
    for bad, match in [
        (dict(), "boxes .* or points"),
        (dict(boxes=[[1, 2, 3]]), "N x 4"),
        (dict(boxes=[[5, 2, 3, 4]]), "x2 >= x1"),
        (dict(boxes=[[1, 2, 3, np.nan]]), "NaN"),
        (dict(points=[[[1, 2]]], point_labels=[[1, 0]]), "point_labels"),
        (dict(boxes=[[1, 2, 3, 4]] * 2, points=[[[1, 2]]]), "one point set per box"),
        (dict(boxes=[[1, 2, 3, 4]], point_labels=[[1]]), "without points"),
    ]:
        with pytest.raises(ModelError, match=match):
            read_prompts(**bad)


def test_no_boxes_give_no_masks(sam_dir):
    segmenter = load_model(f"medsam:{sam_dir}", device="cpu")
    assert segmenter.segment(np.zeros((20, 30), np.uint8), boxes=np.zeros((0, 4))).shape == (
        0,
        20,
        30,
    )


def test_bad_checkpoints_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ModelError, match="needs its checkpoint"):
        load_model("sam-med2d")
    with pytest.raises(ModelError, match="not a file"):
        load_model(f"sam-med2d:{tmp_path / 'missing.pth'}")
    foreign = tmp_path / "foreign.pth"
    torch.save({"backbone.conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(ModelError, match="lacks"):
        load_model(f"medsam:{foreign}")
    extra = hf_to_original(tiny_model().state_dict())
    extra["head.fc.weight"] = torch.zeros(2)
    with pytest.raises(ModelError, match="not Segment-Anything weights"):
        original_to_hf(extra)
    with pytest.raises(ModelError, match="could not load SAM weights"):
        load_model(f"sam:{tmp_path / 'no-such-dir'}")


def test_segmenters_are_registered():
    for name, default in [
        ("sam", "facebook/sam-vit-base"),
        ("medsam", "flaviagiammarino/medsam-vit-base"),
        ("sam-med2d", None),
    ]:
        spec, model_id = resolve(name)
        assert (spec.kind, spec.extra, spec.default_id, model_id) == (
            "segmenter",
            "models",
            default,
            None,
        )
        assert resolve(f"{name}:/weights/x")[1] == "/weights/x"
