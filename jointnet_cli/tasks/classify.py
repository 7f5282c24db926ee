"""The `classify` task: cross-entropy with per-dataset heads; top-1 accuracy (DESIGN §2).

Every network has a head with K outputs (the run's largest class count) whose
unused outputs are masked to −∞ by the network itself, so networks of datasets
with different label sets stack. A shared network trained on the union of
datasets (shareall) has n·K outputs — one head per dataset — and its labels are
encoded as dataset·K + class.
"""

from __future__ import annotations

import torch
from torch import nn

from jointnet_cli.data.augment import Augment, augment_batch
from jointnet_cli.data.loader import SplitTensors, as_float


class ClassifyTask:
    name = "classify"
    primary_metric = "accuracy"      # higher is better
    higher_is_better = True
    one_loss = True                  # one loss per network: `inputs` + `criterion` (the batched schedule can vmap it)
    directions = {"accuracy": True}
    optimizers = None                # one Adam per network

    def __init__(self, classes_per_head: int, augment: Augment | None = Augment()):
        self.k = classes_per_head
        self.augment = augment

    def logits_for(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For a multi-head (shared) network, the logits of each sample's own dataset head and its class."""
        if logits.shape[1] == self.k:
            return logits, labels
        heads = logits.view(logits.shape[0], -1, self.k)                  # (B, n, K)
        rows = torch.arange(logits.shape[0], device=logits.device)
        return heads[rows, labels // self.k], labels % self.k

    def inputs(self, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """One training mini-batch as (images, augmented by `gen` when augmentation is on; labels)."""
        images = split.images[idx]
        x = augment_batch(images, self.augment, gen) if self.augment else as_float(images)
        return x, split.labels[idx]

    def criterion(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of each sample's own head (see `logits_for`)."""
        return nn.functional.cross_entropy(*self.logits_for(logits, labels))

    def loss(self, net: nn.Module, split: SplitTensors, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """f_i on one mini-batch: cross-entropy of the network's logits."""
        x, labels = self.inputs(split, idx, gen)
        return self.criterion(net(x), labels)

    fit_loss = loss                # how well a network fits a dataset (learned groups' transfer ratios)

    @torch.no_grad()
    def calibrate(self, net: nn.Module, split: SplitTensors, chunk: int = 64) -> None:
        """Recompute the BatchNorm statistics that evaluation uses, from the whole training split unaugmented.

        In training, BatchNorm normalises each batch by that batch's own statistics, so this changes no
        training step; only the running averages it keeps for evaluation change. Those averages describe
        augmented images (random crops, colour jitter) under parameters that were still moving, not the
        plain images evaluation sees. Here each BatchNorm's statistics become the plain average over
        equal chunks of the split (momentum None), as `torch.optim.swa_utils.update_bn` computes them.
        """
        norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
        if not norms:
            return
        was_training, momenta = net.training, [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        net.train()
        count = split.images.shape[0]
        for idx in torch.arange(count).tensor_split(-(-count // chunk)):
            net(as_float(split.images[idx.to(split.images.device)]))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        net.train(was_training)

    @torch.no_grad()
    def evaluate(self, net: nn.Module, split: SplitTensors, *, seed: int, dataset: str,
                 batch_size: int = 256) -> dict:
        """Top-1 accuracy over the whole test split (no dropped remainder), and per class."""
        was_training = net.training
        net.eval()
        correct = torch.zeros(self.k, dtype=torch.long)
        total = torch.zeros(self.k, dtype=torch.long)
        for idx in split.batches(batch_size):
            logits, labels = self.logits_for(net(as_float(split.images[idx])), split.labels[idx])
            hit = (logits.argmax(dim=1) == labels).long().cpu()
            labels = labels.cpu()
            correct.index_add_(0, labels, hit)
            total.index_add_(0, labels, torch.ones_like(labels))
        net.train(was_training)
        return {
            "accuracy": correct.sum().item() / max(total.sum().item(), 1),
            "per_class": [(c / t) if t else None for c, t in zip(correct.tolist(), total.tolist())],
        }

    report_metrics = evaluate      # what `jointnet evaluate` reports: what training scores
