"""Checkpoint files: safetensors only (DESIGN §4).

A snapshot is one `.safetensors` file holding all n networks as
`{dataset}/{state_dict key}`, plus `coupling/weights` (W, n, n) and
`coupling/sigma` (W,) when known, with string metadata naming the format,
stage and iteration. The optimizer state sits beside it as
`NAME.optim.safetensors` so training resumes exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from jointnet_cli.errors import UserError
from jointnet_cli.store.atomic import atomic_write

CKPT_FORMAT = "jointnet-ckpt/1"


def optim_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".safetensors", ".optim.safetensors"))


_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write tensors atomically in the safetensors format, with string metadata.

    The file is streamed (8-byte header length, JSON header, raw little-endian
    bytes in key order) instead of first being built in memory: a snapshot of
    n networks is written every epoch and must cost little next to training.
    """
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in sorted(tensors.items())}
    header: dict[str, object] = {"__metadata__": {"format": CKPT_FORMAT, **metadata}}
    offset = 0
    for key, t in cpu.items():
        size = t.numel() * t.element_size()
        header[key] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)                      # the data starts 8-byte aligned

    def write(f) -> None:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for t in cpu.values():
            if t.numel():
                f.write(memoryview(t.reshape(-1).view(torch.uint8).numpy()))

    atomic_write(path, write)


def _header_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file: an 8-byte little-endian length, then a JSON header."""
    if len(data) < 8:
        raise ValueError("file too short")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header longer than the file")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {} if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise ValueError("malformed header")
    return {str(k): str(v) for k, v in meta.items()}


def _read(path: Path, what: str, broken: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file; anything else (pickle included) is refused unread."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    try:
        meta = _header_metadata(data)
        return st_load(data), meta
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:
        raise UserError(f"{what} {path} {broken} ({e})") from None


def read_safetensors(path: Path, *, what: str = "file") -> dict[str, torch.Tensor]:
    """Any safetensors file's tensors (no format check)."""
    return _read(path, what, "is not a safetensors file")[0]


def load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A jointnet checkpoint's tensors and metadata; every failure is a one-line UserError."""
    tensors, meta = _read(path, "checkpoint", "is corrupt or not a safetensors file")
    if meta.get("format") != CKPT_FORMAT:
        raise UserError(f"checkpoint {path} has format {meta.get('format')!r}; expected {CKPT_FORMAT!r}")
    return tensors, meta
