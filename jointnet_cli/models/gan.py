"""GAN architectures for the `gan` task: DCGAN (Radford et al., 2015) and BEGAN (Berthelot et al., 2017).

Both are a `GanPair` of a generator G (latent z → image in [−1, 1]) and a
discriminator D. Each player is one chain of coupling layers (every conv with
the BatchNorm after it); `couple` picks which players' layers are coupled
(the others are trained per dataset and never coupled, like classifier heads).
Sizes: 32 or 64 px (any power of two ≥ 16).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _levels(image_size: int) -> int:
    levels = int(math.log2(image_size)) - 2          # 4×4 → image_size
    if 2 ** (levels + 2) != image_size or levels < 2:
        raise ValueError(f"GANs need a power-of-two image size ≥ 16, got {image_size}")
    return levels


def dcgan_generator(nz: int, image_size: int, width: int) -> nn.Sequential:
    """z (B, nz, 1, 1) → 4×4 → … → (B, 3, S, S), ConvTranspose–BatchNorm–ReLU, tanh at the end."""
    levels = _levels(image_size)
    ch = width * 2 ** (levels - 1)
    mods: list[nn.Module] = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(levels - 1):
        mods += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
        ch //= 2
    mods += [nn.ConvTranspose2d(ch, 3, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*mods)


def dcgan_discriminator(image_size: int, width: int) -> nn.Sequential:
    """(B, 3, S, S) → … → 4×4 → one logit per image; Conv–BatchNorm–LeakyReLU(0.2), no BatchNorm first."""
    levels = _levels(image_size)
    mods: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    ch = width
    for _ in range(levels - 1):
        mods += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
        ch *= 2
    mods += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False), nn.Flatten()]
    return nn.Sequential(*mods)


class BeganDecoder(nn.Module):
    """h → Linear → (w, 8, 8) → [Conv3×3–ELU, upsample ×2]… → Conv3×3 → tanh image: BEGAN's decoder and generator."""

    def __init__(self, h: int, image_size: int, width: int):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(h, width * 8 * 8)
        ups = int(math.log2(image_size // 8))
        blocks: list[nn.Module] = []
        for _ in range(ups):
            blocks += [nn.Conv2d(width, width, 3, 1, 1), nn.ELU(), nn.Upsample(scale_factor=2, mode="nearest")]
        blocks += [nn.Conv2d(width, width, 3, 1, 1), nn.ELU(), nn.Conv2d(width, 3, 3, 1, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z.flatten(1)).view(-1, self.width, 8, 8))


class BeganEncoder(nn.Module):
    """Image → [Conv3×3–ELU, stride-2 Conv3×3–ELU]… down to 8×8 → Linear → h."""

    def __init__(self, h: int, image_size: int, width: int):
        super().__init__()
        downs = int(math.log2(image_size // 8))
        mods: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1), nn.ELU()]
        ch = width
        for _ in range(downs):
            mods += [nn.Conv2d(ch, ch + width, 3, 2, 1), nn.ELU()]
            ch += width
        self.body = nn.Sequential(*mods)
        self.fc = nn.Linear(ch * 8 * 8, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1))


class BeganDiscriminator(nn.Module):
    """An auto-encoder: D(x) is the reconstruction of x (its L1 error is the discriminator's signal)."""

    def __init__(self, h: int, image_size: int, width: int):
        super().__init__()
        self.enc = BeganEncoder(h, image_size, width)
        self.dec = BeganDecoder(h, image_size, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


class GanPair(nn.Module):
    """Generator and discriminator of one dataset; BEGAN's k_t is a buffer so it is saved and resumed."""

    head_names: tuple[str, ...] = ()

    def __init__(self, kind: str, *, image_size: int, nz: int, width: int):
        super().__init__()
        self.kind, self.nz = kind, nz
        if kind == "dcgan":
            self.G = dcgan_generator(nz, image_size, width)
            self.D = dcgan_discriminator(image_size, width)
            self.apply(_dcgan_init)
        elif kind == "began":
            self.G = BeganDecoder(nz, image_size, width)
            self.D = BeganDiscriminator(nz, image_size, width)
        else:
            raise ValueError(f"unknown GAN {kind!r}")
        self.register_buffer("k", torch.zeros(()))       # BEGAN's k_t (unused by DCGAN)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z.view(z.shape[0], self.nz, 1, 1) if self.kind == "dcgan" else z)


def _dcgan_init(m: nn.Module) -> None:
    """DCGAN's initialisation: conv weights ~ N(0, 0.02), BatchNorm weights ~ N(1, 0.02), biases 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def player_layers(model: GanPair, player: str) -> list[list[str]]:
    """The coupling layers of one player ("G" or "D"), in module order."""
    from jointnet_cli.models.torchvision_nets import layers_from_modules

    sub = getattr(model, player)
    return [[f"{player}.{name}" for name in group] for group in layers_from_modules(sub, skip=())]
