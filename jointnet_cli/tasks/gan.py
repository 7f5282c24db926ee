"""The `gan` task: DCGAN and BEGAN under joint learning (DESIGN §2).

A step updates the discriminator, then the generator, each with the coupling
gradient of its own coupled layers added (`couple(only=…)`) before its Adam
step (β1 = 0.5). Images are scaled to [−1, 1].

- DCGAN: binary cross-entropy; D on real (label 1) and G(z) (label 0), then G
  with the non-saturating loss (label 1). Logged per epoch: D(x) and D(G(z)).
  The "data loss" of a dataset is D's loss.
- BEGAN: D is an auto-encoder, L(v) = mean |v − D(v)|; L_D = L(x) − k_t L(G(z)),
  L_G = L(G(z)); k_{t+1} = clip(k_t + λ_k (γ L(x) − L(G(z))), 0, 1); the
  convergence measure M = L(x) + |γ L(x) − L(G(z))| is the "data loss".

The test metric is the sliced Wasserstein distance between as many samples as
the test split has images (latents from a fixed seed) and the test images.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from jointnet_cli.data.loader import SplitTensors, as_float
from jointnet_cli.seeding import generator


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return as_float(images_uint8).mul_(2).sub_(1)            # [0, 255] → [−1, 1]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class GanTask:
    name = "gan"
    primary_metric = "swd"       # lower is better
    higher_is_better = False
    one_loss = False             # two players, stepped in their own order by `step`
    directions = {"swd": False}

    def __init__(self, kind: str, *, nz: int, lr_betas: tuple[float, float] = (0.5, 0.999),
                 gamma: float = 0.5, lambda_k: float = 0.001, g_layers: frozenset[int] = frozenset(),
                 d_layers: frozenset[int] = frozenset()):
        self.kind, self.nz, self.betas = kind, nz, lr_betas
        self.gamma, self.lambda_k = gamma, lambda_k
        self.g_layers, self.d_layers = g_layers, d_layers      # indices of each player's coupled layers

    def optimizers(self, net: nn.Module, lr: float) -> list[torch.optim.Optimizer]:
        """One Adam per player: [discriminator, generator]."""
        return [torch.optim.Adam(net.D.parameters(), lr=lr, betas=self.betas),
                torch.optim.Adam(net.G.parameters(), lr=lr, betas=self.betas)]

    def latents(self, count: int, gen: torch.Generator, device) -> torch.Tensor:
        return torch.randn(count, self.nz, generator=gen).to(device, non_blocking=True)

    def step(self, net, opts, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator,
             couple: Callable[..., None]) -> tuple[torch.Tensor, dict]:
        opt_d, opt_g = opts
        real = to_signed(split.images[idx])
        b = real.shape[0]
        z_d, z_g = self.latents(b, gen, real.device), self.latents(b, gen, real.device)
        if self.kind == "dcgan":
            bce = nn.functional.binary_cross_entropy_with_logits
            opt_d.zero_grad(set_to_none=False)
            fake = net.generate(z_d)
            d_real, d_fake = net.D(real), net.D(fake.detach())
            loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            loss_d.backward()
            couple(self.d_layers)
            opt_d.step()
            opt_g.zero_grad(set_to_none=False)
            d_gen = net.D(net.generate(z_g))
            loss_g = bce(d_gen, torch.ones_like(d_gen))
            loss_g.backward()
            couple(self.g_layers)
            opt_g.step()
            stats = {"d_real": torch.sigmoid(d_real).mean().item(), "d_fake": torch.sigmoid(d_fake).mean().item()}
            return loss_d.detach(), stats
        # BEGAN
        def recon_error(v: torch.Tensor) -> torch.Tensor:
            return (v - net.D(v)).abs().mean()

        opt_d.zero_grad(set_to_none=False)
        l_real = recon_error(real)
        l_fake = recon_error(net.generate(z_d).detach())
        loss_d = l_real - net.k * l_fake
        loss_d.backward()
        couple(self.d_layers)
        opt_d.step()
        opt_g.zero_grad(set_to_none=False)
        l_gen = recon_error(net.generate(z_g))
        l_gen.backward()
        couple(self.g_layers)
        opt_g.step()
        with torch.no_grad():
            balance = self.gamma * l_real - l_gen
            net.k.add_(self.lambda_k * balance).clamp_(0.0, 1.0)
            m = l_real + balance.abs()
        return m.detach(), {"M": m.item(), "k": net.k.item()}

    def real_loss(self, net, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The discriminator's loss on real images alone (dcgan: BCE against "real"; began: the mean absolute
        reconstruction error): how well the network's D has learned these images. `gen` is unused (no
        randomness), kept for the shape of the other tasks' `loss`."""
        real = to_signed(split.images[idx])
        if self.kind == "dcgan":
            d_real = net.D(real)
            return nn.functional.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
        return (real - net.D(real)).abs().mean()

    fit_loss = real_loss           # how well a network fits a dataset (learned groups' transfer ratios)

    def calibrate(self, net, split: SplitTensors) -> None:
        """Nothing: samples are drawn as the generator was trained to draw them."""

    @torch.no_grad()
    def sample(self, net, count: int, gen: torch.Generator, batch_size: int = 256) -> torch.Tensor:
        """`count` uint8 samples (count, 3, S, S) from the generator (eval mode), latents drawn from `gen`."""
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        z = self.latents(count, gen, device)
        out = torch.cat([to_uint8(net.generate(z[s:s + batch_size])) for s in range(0, count, batch_size)])
        net.train(was_training)
        return out

    @torch.no_grad()
    def evaluate(self, net, split: SplitTensors, *, seed: int, dataset: str) -> dict:
        """SWD (×10³, per Laplacian level and averaged) between len(test) samples and the test images."""
        from jointnet_cli.tasks.swd import swd

        fake = self.sample(net, len(split), generator(seed, "eval-samples", dataset))
        return swd(as_float(fake).cpu(), as_float(split.images).cpu(), seed=seed)

    report_metrics = evaluate      # what `jointnet evaluate` reports: what training scores
