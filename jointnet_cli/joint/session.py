"""A training session on one run: its data, task, networks, checkpoints and progress.

The stages (`warmstart`, `irls`, baselines) are written against this object so
that each reads like the paper; everything about files and devices is here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from jointnet_cli.data.augment import Augment
from jointnet_cli.data.loader import DomainData, load_domains
from jointnet_cli.errors import RunFailure, UserError
from jointnet_cli.joint import weights as jw
from jointnet_cli.joint.batched import BatchedRounds
from jointnet_cli.joint.bcd import steps_per_round, train_round
from jointnet_cli.joint.distributed import Group, train_round_synced
from jointnet_cli.joint.ensemble import Ensemble
from jointnet_cli.joint.precision import Precision
from jointnet_cli.joint.reporter import Reporter
from jointnet_cli.joint.snapshots import Snapshots
from jointnet_cli.models.registry import build
from jointnet_cli.store.tensors import load_tensors, save_tensors
from jointnet_cli.runs.config import RunConfig
from jointnet_cli.runs.rundir import RunDir
from jointnet_cli.seeding import derive_seed, generator
from jointnet_cli.tasks import Task, make_task


EXPLODED = 1e6   # a mean data loss beyond this is treated as divergence
BATCHED_ON_GPU = ("ae9", "convnet")   # architectures `--schedule auto` trains with batched on a GPU


def class_counts(cfg: RunConfig, domains: list[DomainData]) -> list[int]:
    """Classes per dataset for the classify task ([] for other tasks); unlabelled data is refused."""
    if cfg.task != "classify":
        return []
    for d in domains:
        if d.train.labels is None or d.test.labels is None:
            raise UserError(f"classification needs labelled datasets; {d.name} has no labels (prepare it from class folders)")
    return [len(d.manifest.get("classes", [])) for d in domains]


def gan_settings(cfg: RunConfig, built) -> dict | None:
    """GanTask arguments: the GAN kind, latent size, BEGAN constants and each player's coupled layer indices."""
    if cfg.task != "gan":
        return None
    layers: dict[str, frozenset[int]] = {"G": frozenset(), "D": frozenset()}
    start = 0
    for player, length in zip(built.players, built.chains):
        layers[player] = frozenset(range(start, start + length))
        start += length
    return {"kind": cfg.arch, "nz": cfg.latent, "gamma": cfg.gamma, "lambda_k": cfg.lambda_k,
            "g_layers": layers["G"], "d_layers": layers["D"]}


def initial_network(cfg: RunConfig, *, channels: int, num_classes: int, run: RunDir | None = None,
                    writer: bool = True):
    """The seeded initial network every dataset starts from (with --pretrained / --init-weights applied).

    Outside weights are fetched once: the backbone they give is kept as
    `checkpoints/init.safetensors`, and every later stage of the run (on any
    machine) starts from that file, so all methods share one start and
    nothing is downloaded again. Under torchrun only rank 0 (`writer`) reads
    them; the other ranks build the seeded network and receive rank 0's.
    """
    from jointnet_cli.models.registry import backbone_state, initial_weights, load_backbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        built = build(cfg.arch, image_size=cfg.image_size, channels=channels, width=cfg.width, num_classes=num_classes,
                      nz=cfg.latent, couple=cfg.couple)
    if not (cfg.pretrained or cfg.init_weights) or not writer:
        return built
    saved = run.checkpoint("init") if run is not None else None
    if saved is not None and saved.is_file():
        tensors, _ = load_tensors(saved)
        load_backbone(built.model, tensors, str(saved))
        return built
    initial_weights(built.model, arch=cfg.arch, pretrained=cfg.pretrained, init_weights=cfg.init_weights)
    if saved is not None:
        save_tensors(saved, backbone_state(built.model), {"stage": "init", "arch": cfg.arch})
    return built


@dataclass
class Session:
    run: RunDir
    cfg: RunConfig
    domains: list[DomainData]
    ens: Ensemble
    task: Task
    device: torch.device
    reporter: Reporter = field(default_factory=Reporter)
    window_labels: list[str] | None = None       # "G w1", … for a GAN's players; default "w1", …
    group: Group = field(default_factory=Group)  # the processes of a torchrun run (one by default)
    batched: BatchedRounds = field(default_factory=BatchedRounds, repr=False)   # its rounds keep a CUDA graph
    distances: jw.LayerDistances = field(default_factory=jw.LayerDistances, repr=False)  # keeps its scratch
    chosen_lam: float | None = None              # λ found by `--lambda auto` (state.json "lambda_search")
    snapshots: Snapshots = field(init=False, repr=False)   # state.json and checkpoints, rank 0 writing
    precision: Precision = field(init=False, repr=False)   # --precision of the training steps

    def __post_init__(self) -> None:
        self.snapshots = Snapshots(self.run, self.ens, self.group, self.cfg.arch, self.cfg.datasets, self.device)
        self.precision = Precision(self.cfg.precision, self.device)

    @classmethod
    def open(cls, run: RunDir, cfg: RunConfig, *, data_dir: Path, device: torch.device,
             reporter: Reporter | None = None, group: Group | None = None) -> "Session":
        holdout = (cfg.holdout, cfg.seed) if cfg.evaluate_on == "holdout" else None
        domains = load_domains(data_dir, list(cfg.datasets), device, holdout=holdout)
        for d in domains:
            if d.train.images.shape[-1] != cfg.image_size:
                raise UserError(f"dataset {d.name} is {d.train.images.shape[-1]} px; the run uses {cfg.image_size} px")
        classes = class_counts(cfg, domains)
        k = max(classes, default=0)
        group = group or Group()
        built = initial_network(cfg, channels=domains[0].train.images.shape[1], num_classes=k, run=run,
                                writer=group.writer)
        augment = Augment(crop_scale=(cfg.crop_scale, 1.0), jitter=cfg.jitter, flip=cfg.flip) if cfg.augment else None
        task = make_task(cfg.task, hole=cfg.hole, classes_per_head=k, augment=augment, gan=gan_settings(cfg, built))
        ens = Ensemble(list(cfg.datasets), built.model, built.layers, lr=cfg.lr, device=device, chains=built.chains,
                       optimizers=task.optimizers)
        for net, count in zip(ens.nets, classes):               # each head shows only its own classes
            net.class_mask.copy_(torch.arange(k, device=device) < count)
        return cls(run, cfg, domains, ens, task, device, reporter or Reporter(), built.window_names, group)

    @property
    def n(self) -> int:
        return self.ens.n

    # -- distances, windows, coupling ------------------------------------------
    @property
    def windows(self) -> jw.Windows:
        return jw.chain_windows(self.ens.chains)

    def calibrate(self) -> None:
        """Before the networks are scored and saved: what evaluation needs that training does not keep
        (`Task.calibrate`; classify: BatchNorm statistics of each dataset's plain training split)."""
        for net, domain in zip(self.ens.nets, self.domains):
            self.task.calibrate(net, domain.train)

    def layer_sq_distances(self) -> torch.Tensor:
        """(L, n, n) ‖θ_i^l − θ_j^l‖² on the current parameters."""
        return self.distances(self.ens.layer_rows())

    def window_sq_distances(self, layer_d2: torch.Tensor | None = None) -> torch.Tensor:
        """(W, n, n) d_ijw² on the current parameters (or from given layer distances)."""
        return jw.window_sq_distances(self.layer_sq_distances() if layer_d2 is None else layer_d2, self.windows)

    @property
    def window_names(self) -> list[str]:
        return self.window_labels or [f"w{k + 1}" for k in range(len(self.windows))]

    def all_ones(self) -> torch.Tensor:
        """Window weights of the L2 problem: (W, n, n) ones."""
        return torch.ones(len(self.windows), self.n, self.n, dtype=torch.float64)

    @property
    def lam(self) -> float:
        """λ: the configured number, or the one `--lambda auto` chose."""
        if self.cfg.lam != "auto":
            return float(self.cfg.lam)
        if self.chosen_lam is None:
            raise RunFailure("--lambda auto: no λ has been chosen yet (the search runs first in irls/warmstart)")
        return self.chosen_lam

    def coupling(self, weights: torch.Tensor, sigma: torch.Tensor | None = None) -> torch.Tensor:
        """(L, n, n) c_ijl = λ Σ_{w ∋ l} w_ijw for this run's λ and windows; with the `normalized`
        penalty and a σ, each window's weight is divided by σ_w²."""
        scale = sigma if self.cfg.penalty == "normalized" else None
        return jw.coupling(weights, self.lam, self.ens.num_layers, self.windows, sigma=scale)

    # -- training --------------------------------------------------------------
    @property
    def schedule(self) -> str:
        """The schedule that trains: the configured one, `auto` resolved by measurement (README
        "Schedules"): `batched` on a GPU for the small one-loss networks (ae9, convnet), where launching
        kernels, not arithmetic, takes the time; `bcd` otherwise (CPUs, GANs, and large backbones, whose
        activations `batched` would hold for all n networks at once). A single network (shareall) has
        nothing to batch and trains as bcd.

        `auto` with `--block step` is bcd (batched has no block). With --sync-every, or under torchrun, `bcd` trains against anchors fixed between
        synchronisation points ("bcd-sync", the same in one process and in several)."""
        if self.n == 1 and not self.group.distributed:
            return "bcd"
        if self.group.distributed or self.cfg.sync_every is not None:
            return "bcd-sync"
        if self.cfg.schedule == "auto":
            if self.cfg.block == "step" or self.precision.mode == "16-mixed":   # bcd's own settings decide
                return "bcd"
            small = self.cfg.arch in BATCHED_ON_GPU and self.task.one_loss
            return "batched" if self.device.type == "cuda" and small else "bcd"
        return self.cfg.schedule

    def _trainer(self, schedule: str) -> Callable[..., list[float]]:
        if schedule == "batched":
            return self.batched
        if schedule == "bcd-sync":
            def synced(*args, block: str, **kw) -> list[float]:
                return train_round_synced(*args, group=self.group, sync_every=self.cfg.sync_every or 0, **kw)
            return synced
        return train_round

    def train_resumable(self, state: dict, entry: dict, c: torch.Tensor, *, stage: str, iteration: int,
                        epochs: int, prefix: str, evaluate: Callable[[], dict] | None = None) -> list[float]:
        """Train rounds `entry["epochs_done"]`…`epochs`−1 with the fixed coupling `c` (eq. 6), by the run's schedule.

        After every round (one epoch of every dataset): a progress snapshot
        `checkpoints/{prefix}-eNNNN`, the round's data loss, test metrics and
        seconds appended to `entry["history"]`, and state.json written (`entry`
        lives inside `state`). A rerun after a kill continues from the last
        completed round; the caller loads `entry["progress"]` first. Returns the
        last round's mean data loss per network. `evaluate` gives the test
        metrics recorded per round (default: every network on its own test split). Each history
        entry names the schedule (`bcd` or `batched`) that trained it.
        """
        evaluate = evaluate or self.evaluate
        schedule = self.schedule
        train = self._trainer(schedule)
        first = entry.get("epochs_done", 0)
        bad = [name for i, name in enumerate(self.ens.names) if not torch.isfinite(c[:, i, :]).all()]
        if bad:
            raise RunFailure(f"the coupling of {bad[0]} holds NaN or inf before {stage} epoch {first + 1}; "
                             "the last good checkpoint is kept")
        history = entry.setdefault("history", [])
        losses = list(history[-1]["data_loss"].values()) if history else []
        mine = [self.domains[i] for i in self.group.owned(self.n)]          # the steps this process takes
        steps = (epochs - first) * steps_per_round(mine, self.cfg.batch_size)
        self.reporter.start(f"{stage}{f' k={iteration}' if stage == 'irls' else ''} epochs {first + 1}–{epochs}", steps)
        try:
            for epoch in range(first, epochs):
                t0 = time.perf_counter()
                stats: dict = {}
                losses = train(
                    self.ens, c.to(torch.float64), self.domains, self.task,
                    batch_size=self.cfg.batch_size, seed=self.cfg.seed, key=(stage, iteration, epoch),
                    block=self.cfg.block, on_step=self.reporter.advance, stats=stats,
                    prox=self.cfg.lr if self.cfg.apply == "prox" else None, precision=self.precision,
                )
                seconds = time.perf_counter() - t0
                every = self.cfg.eval_every
                scored = epoch + 1 == epochs or (every > 0 and (epoch + 1) % every == 0)
                if scored:                         # what evaluation needs and training does not keep, saved too
                    self.calibrate()
                self.check_not_diverged(losses, stage, epoch)   # recalibrated statistics checked too
                old = entry.get("progress")
                entry["progress"] = self.snapshots.save(f"{prefix}-e{epoch + 1:04d}", stage=stage,
                                                       iteration=iteration, epoch=epoch + 1)
                history.append({"epoch": epoch + 1, "data_loss": dict(zip(self.ens.names, losses)),
                                **({"metrics": evaluate()} if scored else {}), "seconds": seconds,
                                "schedule": schedule, "precision": self.precision.mode,
                                **({"sync_every": self.cfg.sync_every or 0} if schedule == "bcd-sync" else {}),
                                **({"stats": stats} if stats else {})})
                entry["epochs_done"] = epoch + 1
                self.snapshots.write_state(state)
                self.snapshots.remove(old)
                self.reporter.epoch(stage, {"k": iteration, **history[-1]})
        finally:
            self.reporter.finish()
        return losses

    def check_not_diverged(self, losses: list[float], stage: str, epoch: int) -> None:
        """Before epoch `epoch`'s snapshot: stop (RunFailure) on a non-finite or exploded data loss, or on NaN/inf in
        any parameter, BatchNorm statistic or optimizer state, naming dataset, tensor and epoch."""
        kept = (f"its epoch {epoch} is kept" if epoch else "nothing of it was saved") + \
            "; rerun with a smaller --lr (it applies from there on)"
        for name, v in zip(self.ens.names, losses):
            if not math.isfinite(v) or abs(v) > EXPLODED:
                raise RunFailure(f"training diverged: the loss of {name} became {v:.4g} in {stage} epoch "
                                 f"{epoch + 1}; {kept}")
        if bad := self.ens.first_non_finite():
            raise RunFailure(f"training diverged: {bad[0]}'s {bad[1]} holds NaN or inf after {stage} epoch "
                             f"{epoch + 1}; {kept}")

    def data_loss_at_parameters(self, batch_size: int = 256) -> dict[str, float] | None:
        """f_i of every network at its current parameters on its whole training split (`data_loss_on`).
        None for tasks without one loss (GAN) and under torchrun."""
        if not self.task.one_loss or self.group.distributed:
            return None
        return {dom.name: self.data_loss_on(i, i, batch_size) for i, dom in enumerate(self.domains)}

    @torch.no_grad()
    def data_loss_on(self, net_index: int, data_index: int, batch_size: int = 256) -> float:
        """f_j(θ_i): network i's training loss on dataset j's whole training split (for a GAN, its
        discriminator's loss on j's real images): the task's `fit_loss`; batches in order, holes and augmentations
        from a generator seeded by the run seed and dataset j (the same for every network), eval-mode
        statistics; summed over samples, divided once."""
        net, dom = self.ens.nets[net_index], self.domains[data_index]
        loss = self.task.fit_loss
        was = net.training
        net.eval()
        gen = generator(self.cfg.seed, "objective", dom.name)
        total = 0.0
        for idx in dom.train.batches(batch_size):
            total += float(loss(net, dom.train, idx, gen)) * idx.numel()
        net.train(was)
        return total / len(dom.train)

    def final_metrics(self, entry: dict) -> dict[str, dict[str, float]]:
        """The test metrics of the networks as a stage left them: its last epoch's (always scored), else scored now."""
        history = entry.get("history") or [{}]
        return history[-1].get("metrics") or self.evaluate()

    def finish_resumable(self, state: dict, entry: dict, prefix: str) -> None:
        """After the stage's final snapshot is recorded in `entry`: drop its progress snapshots."""
        progress = entry.pop("progress", None)
        self.snapshots.write_state(state)
        self.snapshots.remove(progress)
        self.snapshots.prune(f"{prefix}-e*.safetensors")

    def evaluate(self, indices: list[int] | None = None, *, report: bool = False) -> dict[str, dict[str, float]]:
        """The task's test metric for every dataset (or those in `indices`), on its whole test split;
        with `report`, every metric the task reports (ae: PSNR and SSIM too; slower, for `evaluate`).

        Under torchrun each rank scores the networks it trains and every rank gets all the scores."""
        wanted = set(range(self.n) if indices is None else indices)
        score = self.task.report_metrics if report else self.task.evaluate
        own = {self.domains[i].name: score(self.ens.nets[i], self.domains[i].test, seed=self.cfg.seed,
                                           dataset=self.domains[i].name)
               for i in self.group.owned(self.n) if i in wanted}
        if not self.group.distributed:
            return own
        merged = {name: m for part in self.group.gather_json(own) for name, m in part.items()}
        return {name: merged[name] for name in self.ens.names if name in merged}
