"""Find and load one dataset's trained network of a run (any method, any task), reading only its tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jointnet_cli.errors import UserError
from jointnet_cli.wording import article

TASK_WORDS = {"ae": "auto-encoder", "classify": "classifier", "gan": "GAN"}


@dataclass(frozen=True)
class TrainedCheckpoint:
    run: Path
    dataset: str
    method: str
    path: Path
    cfg: Any                      # RunConfig


def find_checkpoint(run_path: Path | str, dataset: str, method: str | None, *, task: str) -> TrainedCheckpoint:
    """The checkpoint of `method` in the run, checked without importing torch."""
    from jointnet_cli.report.evaluate import trained_methods
    from jointnet_cli.runs.config import RunConfig
    from jointnet_cli.runs.rundir import RunDir

    run = RunDir(run_path)
    if not run.exists():
        raise UserError(f"no run at {run.path} (config.json missing)")
    cfg = RunConfig.from_json(run.read_config(), where=str(run.config_path))
    if cfg.task != task:
        raise UserError(f"run {run.path} trains task {cfg.task}; this command needs {article(task)} run")
    if dataset not in cfg.datasets:
        raise UserError(f"unknown dataset {dataset!r} for --dataset; run {run.path} has {', '.join(cfg.datasets)}")
    methods = trained_methods(run.read_state())
    if not methods:
        raise UserError(f"run {run.path} has no trained {TASK_WORDS.get(task, task)} yet (train irls or a baseline first)")
    chosen = method or "joint"
    if chosen not in methods:
        partial = [m for m in methods if m.startswith(f"{chosen}-") and m[len(chosen) + 1:].isdigit()]
        # `l2-partial` → the one l2-partial-NN (`l2` never means l2-groups)
        if len(partial) == 1:
            chosen = partial[0]
        else:
            hint = "" if method else "; pick one with --method"
            raise UserError(f"run {run.path} has no trained {chosen!r} network (trained: {', '.join(methods)}){hint}")
    path = run.resolve(methods[chosen]["checkpoint"])
    if not path.is_file():
        raise UserError(f"checkpoint of {chosen!r} not found: {path}")
    return TrainedCheckpoint(run.path, dataset, chosen, path, cfg)


def load_model(ck: TrainedCheckpoint, device: str):
    """Rebuild the architecture from config.json and load only this dataset's tensors (safetensors)."""
    from safetensors import SafetensorError, safe_open

    from jointnet_cli.joint.device import resolve_device
    from jointnet_cli.models.registry import build
    from jointnet_cli.store.tensors import CKPT_FORMAT

    dev = resolve_device(device)
    cfg = ck.cfg
    model = build(cfg.arch, image_size=cfg.image_size, channels=3, width=cfg.width, nz=cfg.latent,
                  couple=cfg.couple).model
    prefix = f"{ck.dataset}/"
    try:
        with safe_open(str(ck.path), framework="pt", device="cpu") as f:
            fmt = (f.metadata() or {}).get("format")
            tensors = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(f"checkpoint {ck.path} is corrupt or not a safetensors file ({e})") from None
    if fmt != CKPT_FORMAT:
        raise UserError(f"checkpoint {ck.path} has format {fmt!r}; expected {CKPT_FORMAT!r}")
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [f"{k} is {list(tensors[k].shape)}, expected {list(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        detail = (f"missing {', '.join(missing[:3])}" if missing else
                  f"unexpected {', '.join(unexpected[:3])}" if unexpected else "; ".join(wrong[:3]))
        raise UserError(f"checkpoint {ck.path} does not hold a {cfg.arch} network for {ck.dataset!r} "
                        f"as config.json describes it ({detail})")
    model.load_state_dict(tensors)
    model.eval().to(dev)                      # eval: BatchNorm uses its running statistics
    return model, dev
