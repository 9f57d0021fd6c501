"""The built-in EfficientNet-Lite0: architecture, shipped weights, preprocessing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from vidstudy.errors import ParameterError
from vidstudy.extraction.backbone import (
    EfficientNetLite0,
    FusedLite0Features,
    ImageBackbone,
    SameConv2d,
    imagenet_classes,
    lite0_backbone,
    load_lite0,
    top_classes,
)


@pytest.fixture(scope="module")
def lite0():
    return lite0_backbone()


def test_lite0_has_the_published_size_and_loads_the_shipped_weights_strictly(lite0):
    # load_state_dict(strict=True) inside lite0_backbone would have raised on any mismatch.
    assert sum(p.numel() for p in lite0.module.parameters()) == 4_652_008  # 4.65 M, as published
    assert not any(isinstance(m, torch.nn.SiLU) for m in lite0.module.modules())


@pytest.mark.parametrize(("image", "expected"), [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_real_photographs_get_their_imagenet_class(lite0, image, expected):
    frame = getattr(data, image)()  # photographs shipped inside scikit-image
    (top,) = top_classes(lite0, frame[None], k=3)
    assert top[0][0] == expected and top[0][1] > 0.5, top


def test_features_are_the_penultimate_layer_of_the_classifier(lite0):
    frames = np.stack([data.chelsea()[:224, :224], data.coffee()[:224, :224]])
    feats = lite0(frames)
    assert feats.shape == (2, 1280) and feats.dtype == np.float32
    with torch.no_grad():
        logits = lite0.module(lite0.preprocess(frames))
        via_head = lite0.module._fc(torch.from_numpy(feats))
    torch.testing.assert_close(via_head, logits, rtol=1e-4, atol=1e-4)


def test_preprocessing_resizes_whole_frames_and_uses_the_tflite_scale(lite0):
    x = lite0.preprocess(np.full((1, 90, 160, 3), 255, np.uint8))
    assert x.shape == (1, 3, 224, 224)
    assert torch.allclose(x, torch.full_like(x, (255 - 127) / 128))
    with pytest.raises(ParameterError, match="uint8 RGB"):
        lite0.preprocess(np.zeros((1, 8, 8), np.float32))


@pytest.mark.parametrize("size", [224, 225, 17])
def test_same_padding_matches_tensorflow_output_sizes(size):
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    assert conv(torch.zeros(1, 1, size, size)).shape[-1] == -(-size // 2)
    feats = EfficientNetLite0().eval().features(torch.zeros(1, 3, size + 15, size))
    assert feats.shape == (1, 1280)


def test_any_torch_module_can_be_a_backbone():
    module = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    bb = ImageBackbone(module, input_size=32, mean=(0, 0, 0), std=(255, 255, 255), name="mean-colour")
    out = bb(np.full((4, 50, 40, 3), 51, np.uint8))
    np.testing.assert_allclose(out, 0.2, atol=1e-5)
    with pytest.raises(ParameterError, match="1000 ImageNet logits"):
        top_classes(bb, np.zeros((1, 32, 32, 3), np.uint8))


@pytest.mark.parametrize(("device", "message"), [("foo", "not a torch device"), ("cuda:7", "not available")])
def test_unusable_devices_are_named(device, message):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    module = torch.nn.Identity()
    with pytest.raises(ParameterError, match=message):
        ImageBackbone(module, input_size=32, mean=(0, 0, 0), std=(1, 1, 1), name="x", device=device)


def test_class_names_are_the_imagenet_1k_list():
    names = imagenet_classes()
    assert len(names) == 1000 and names[285] == "Egyptian cat" and names[967] == "espresso"


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [224, 225, 17])
def test_same_padding_pads_zeros_where_tensorflow_does(size, stride):
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 5, stride=stride, bias=True)
    x = torch.randn(1, 2, size, size + 1)
    pads = [max((-(-n // stride) - 1) * stride + 5 - n, 0) for n in x.shape[-2:]]  # TensorFlow's total per side
    (top, left), (bottom, right) = [p // 2 for p in pads], [p - p // 2 for p in pads]
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, stride)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_fused_features_are_the_models_features():
    torch.manual_seed(0)
    model = load_lite0()  # its batch norms hold the trained statistics, far from mean 0 and variance 1
    x = torch.rand(2, 3, 231, 224) * 2 - 1  # odd sizes: TensorFlow's asymmetric padding
    with torch.no_grad():
        fused, plain = FusedLite0Features(model)(x), model.features(x)
    assert fused.is_contiguous() and plain.abs().max() > 1
    torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-4)
