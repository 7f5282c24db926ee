"""`resnet18` and `inception_v3`: torchvision's definitions with a per-dataset head.

The classifier (`fc`) is replaced by one with `num_classes` outputs (the run's
largest class count) and masked by the `class_mask` buffer. The layer list is
derived from the module order: every Conv/Linear starts a layer holding its
parameters and those of the BatchNorm right after it; the head is not coupled.
Pretrained ImageNet weights come from torchvision's weights API (`--pretrained`,
needs the internet) or a local safetensors file (`--init-weights`).
"""

from __future__ import annotations

import torch
from torch import nn

from jointnet_cli.errors import RunFailure, UserError


class MaskedHead(nn.Module):
    """Wraps a backbone whose `fc` is the head; hides unused outputs."""

    head_names = ("net.fc.weight", "net.fc.bias")

    def __init__(self, net: nn.Module, num_classes: int):
        super().__init__()
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        self.net = net
        self.register_buffer("class_mask", torch.ones(num_classes, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if not isinstance(out, torch.Tensor):        # inception's (logits, aux) named tuple in training
            out = out[0]
        return out.masked_fill(~self.class_mask, float("-inf"))


def build_torchvision(arch: str, num_classes: int) -> MaskedHead:
    import torchvision

    if arch == "resnet18":
        net = torchvision.models.resnet18(weights=None)
    elif arch == "inception_v3":
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    else:
        raise UserError(f"unknown torchvision architecture {arch!r}")
    return MaskedHead(net, num_classes)


def layers_from_modules(model: nn.Module, skip: tuple[str, ...]) -> list[list[str]]:
    """Groups of parameter names in module order: a Conv/Linear with the BatchNorm that follows it."""
    groups: list[list[str]] = []
    for name, module in model.named_modules():
        if any(name == s or name.startswith(s + ".") for s in skip):
            continue
        own = [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            groups.append(own)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and groups:
            groups[-1].extend(own)
        elif own:
            groups.append(own)
    return groups


def pretrained_state(arch: str) -> dict[str, torch.Tensor]:
    """ImageNet weights of torchvision's `arch`, fetched with its weights API (weights_only loading)."""
    import torchvision

    weights = {"resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
               "inception_v3": torchvision.models.Inception_V3_Weights.IMAGENET1K_V1}[arch]
    try:
        return torch.hub.load_state_dict_from_url(weights.url, progress=True, check_hash=True, weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise RunFailure(
            f"could not fetch the pretrained {arch} weights from {weights.url} ({type(e).__name__}: {e}); "
            "without internet access, convert them to safetensors elsewhere and pass --init-weights FILE.safetensors"
        ) from None
