"""Builtin collections and the `--datasets` specification (`bird,dog` or `@synth8`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jointnet_cli.data import synth8
from jointnet_cli.data.format import MANIFEST, list_datasets, validate_name
from jointnet_cli.errors import UserError


@dataclass(frozen=True)
class Collection:
    """A builtin collection: its datasets in fixed order and each one's ground-truth group."""

    name: str
    datasets: tuple[str, ...]
    groups: tuple[str, ...]  # groups[i] is the group of datasets[i]


BUILTIN: dict[str, Collection] = {
    synth8.COLLECTION: Collection(
        name=synth8.COLLECTION,
        datasets=tuple(name for name, _ in synth8.DOMAINS),
        groups=tuple(group for _, group in synth8.DOMAINS),
    ),
}


def resolve_datasets(spec: str, data_dir: Path) -> list[str]:
    """Turn `--datasets` (a comma list of names, or `@COLLECTION`) into dataset names, in order.

    Every name must be a prepared dataset in `data_dir`; problems are reported together.
    """
    data_dir = Path(data_dir)
    spec = spec.strip()
    if not spec:
        raise UserError("--datasets is empty: give a comma list of dataset names or @COLLECTION")
    if spec.startswith("@"):
        if "," in spec:
            raise UserError(f"--datasets {spec!r}: give either @COLLECTION alone or a comma list of names")
        key = spec[1:].strip()
        if key not in BUILTIN:
            known = ", ".join(f"@{k}" for k in sorted(BUILTIN))
            raise UserError(f"--datasets: unknown collection '@{key}' (known: {known})")
        found = [n for n in BUILTIN[key].datasets if (data_dir / n / MANIFEST).is_file()]
        if not found:
            raise UserError(
                f"--datasets @{key}: none of its datasets are in {data_dir}; "
                f"run `jointnet prepare --builtin {key} --data-dir {data_dir}` first"
            )
        return found

    names = [part.strip() for part in spec.split(",")]
    problems = []
    if any(not n for n in names):
        problems.append(f"--datasets {spec!r} has an empty name")
    valid = []
    for n in names:
        if not n:
            continue
        try:
            valid.append(validate_name(n))
        except UserError as e:
            problems.append(str(e))
    duplicates = sorted({n for n in valid if valid.count(n) > 1})
    if duplicates:
        problems.append(f"--datasets names {', '.join(duplicates)} more than once")
    available = list_datasets(data_dir)
    unknown = [n for n in dict.fromkeys(valid) if n not in available]
    if unknown:
        where = f"available: {', '.join(available)}" if available else "none prepared there; run `jointnet prepare`"
        problems.append(f"unknown dataset{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {data_dir} ({where})")
    if problems:
        raise UserError("; ".join(problems))
    return valid
