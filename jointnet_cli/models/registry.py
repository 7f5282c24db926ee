"""Architectures and their explicit layer lists (DESIGN §1 "What is a layer")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jointnet_cli.errors import UserError


@dataclass(frozen=True)
class Built:
    model: "object"               # torch.nn.Module
    layers: list[list[str]]       # θ^1..θ^L as groups of parameter names (heads excluded)
    chains: list[int] | None = None          # layer counts per player (GAN); None = one chain
    window_names: list[str] | None = None    # e.g. "G w1" … for reports; None = "w1" …
    players: list[str] | None = None         # the player of each chain ("G", "D")


def build(arch: str, *, image_size: int, channels: int = 3, width: int = 32, num_classes: int = 0,
          nz: int = 64, couple: str = "") -> Built:
    """Build architecture `arch` for `image_size` px and return it with its layer list."""
    if arch in ("dcgan", "began"):
        from jointnet_cli.models.gan import GanPair, player_layers

        if image_size < 16 or image_size & (image_size - 1):
            raise UserError(f"{arch} needs a power-of-two image size ≥ 16 (e.g. 32 or 64), got {image_size}")
        model = GanPair(arch, image_size=image_size, nz=nz, width=width)
        players = {"g": ["G"], "d": ["D"], "both": ["G", "D"]}[couple or default_couple(arch)]
        chains = [player_layers(model, p) for p in players]
        names = [f"{p} w{k + 1}" for p, chain in zip(players, chains) for k in range(max(len(chain) - 1, 1))]
        return Built(model, [layer for chain in chains for layer in chain], [len(c) for c in chains], names, players)
    if arch == "ae9":
        from jointnet_cli.models import ae9

        if image_size % 16 or image_size < 16:
            raise UserError(f"ae9 needs an image size that is a multiple of 16 (e.g. 32 or 64), got {image_size}")
        model = ae9.AE9(image_size=image_size, channels=channels, width=width)
        return Built(model, ae9.layers(model))
    if arch == "convnet":
        from jointnet_cli.models import convnet

        model = convnet.ConvNet(num_classes, channels=channels, width=width)
        return Built(model, convnet.layers(model))
    if arch in ("resnet18", "inception_v3"):
        from jointnet_cli.models.torchvision_nets import build_torchvision, layers_from_modules

        if arch == "inception_v3" and image_size < 75:
            raise UserError(f"inception_v3 needs images of at least 75 px (got {image_size}); prepare at --size 299")
        model = build_torchvision(arch, num_classes)
        return Built(model, layers_from_modules(model, skip=("net.fc",)))
    raise UserError(f"unknown architecture {arch!r} (known: ae9, convnet, resnet18, inception_v3)")


def default_couple(arch: str) -> str:
    """Which GAN players are coupled by default: all of DCGAN, BEGAN's discriminator auto-encoders."""
    return "both" if arch == "dcgan" else "d"


def backbone_state(model) -> dict:
    """The state of everything but the per-dataset head (and its class mask)."""
    head = set(getattr(model, "head_names", ()))
    return {k: v for k, v in model.state_dict().items() if k not in head and k != "class_mask"}


def load_backbone(model, tensors: dict, source: str) -> int:
    """Copy `tensors` into `model` (all but its head); keys may omit the "net." of torchvision wrappers.

    Missing, unexpected and mismatched keys are reported in one line. Returns how many tensors were loaded.
    """
    head = set(getattr(model, "head_names", ()))
    own = backbone_state(model)
    given = {}
    for k, v in tensors.items():
        key = k if k in own or not ("net." + k) in own else "net." + k
        given[key] = v
    missing = sorted(set(own) - set(given))
    unexpected = sorted(k for k in set(given) - set(own) if k not in head and not k.endswith("fc.weight")
                        and not k.endswith("fc.bias") and not k.startswith("AuxLogits"))
    mismatched = [k for k in own if k in given and tuple(given[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if mismatched:
        k = mismatched[0]
        problems.append(f"{len(mismatched)} of another shape (e.g. {k}: file {tuple(given[k].shape)}, "
                        f"model {tuple(own[k].shape)})")
    if problems:
        raise UserError(f"--init-weights {source} does not fit the backbone: " + "; ".join(problems))
    state = model.state_dict()
    state.update({k: given[k].to(state[k].dtype) for k in own})
    model.load_state_dict(state)
    return len(own)


def initial_weights(model, *, arch: str, pretrained: bool, init_weights: str) -> None:
    """Apply --pretrained or --init-weights to a freshly built model (backbone only)."""
    if init_weights:
        from jointnet_cli.store.tensors import read_safetensors

        load_backbone(model, read_safetensors(Path(init_weights), what="--init-weights file"), init_weights)
    elif pretrained:
        from jointnet_cli.models.torchvision_nets import pretrained_state

        state = pretrained_state(arch)
        load_backbone(model, {k: v for k, v in state.items() if not k.startswith("fc.")}, f"torchvision {arch}")
