"""`complete`: fill a hole in images of any size with a run's trained auto-encoder (the `ae` task).

    from jointnet_cli.apply.complete import complete_images
    complete_images("runs/quickstart", "shapes-1", ["assets/shapes-1.png"], out="filled.png")

The network only ever saw S×S images (the run's `image_size`) with an h×h hole
(`hole`) zero-filled, so every hole is brought to that geometry:

    hole bounding box, side H = max(height, width) in input pixels
    context window: a square of side L = ⌈H·S/h⌉ centred on the hole, shifted to stay
                    inside the image (or padded by edge replication where the image is smaller)
    window → S×S (antialiased bilinear), hole → 0   the network input I ⊙ M
    G(I ⊙ M) → L×L (bilinear), pasted into the hole pixels only

A 22 px hole in a network trained with 22 px holes at 32 px thus sees exactly
a 32×32 crop, no resampling. Pixels outside the hole are never touched: they
are bit-identical to the decoded input when the output format is lossless
(PNG, the default; WebP is written lossless too; JPEG is not lossless).

Decoding ("the decoded input"): EXIF orientation is applied; RGB, RGBA, L
(grayscale) and LA stay as they are; 16-bit grayscale stays 16-bit (mode
I;16); 1-bit becomes L; palette images become RGB, or RGBA when they have
transparency; CMYK and the other colour spaces become RGB; 32-bit integer and
float images become L (or I;16 when their values fit 16 bits). The network
sees RGB with alpha composited over white, exactly as `prepare` fed it
during training; grayscale outputs receive the luminance of the prediction
(ITU-R 601, Pillow's weights) and alpha is kept unchanged everywhere.

The pieces: `network` (the geometry above and the fill), `images` (decoding, encoding,
strips, masks), `plan` (inputs, holes, outputs and their checks); `complete_images`
here runs them.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from jointnet_cli.apply.complete.images import (LABEL_BAND, MODES, Decoded, decode_image, read_mask,
                                                side_by_side_strip, stage_file)
from jointnet_cli.apply.complete.network import (Network, context_window, inpaint, inpaint_many, load_network,
                                                 network_from)
from jointnet_cli.apply.complete.plan import (Job, Progress, check_inputs, expand_inputs, one_line, parse_box,
                                              plan_outputs)
from jointnet_cli.apply.trained import find_checkpoint
from jointnet_cli.data.ingest import available_cores
from jointnet_cli.errors import UserError

__all__ = ["LABEL_BAND", "Decoded", "Network", "complete_images", "context_window", "decode_image", "expand_inputs",
           "inpaint", "inpaint_many", "load_network", "parse_box", "side_by_side_strip"]


def complete_images(run: Path | str, dataset: str, inputs: Sequence[str | Path], *, method: str | None = None,
                    box: tuple[int, int] | None = None, size: int | None = None, mask: Path | str | None = None,
                    out: Path | str | None = None, side_by_side: bool = False, force: bool = False,
                    device: str = "auto", batch_size: int = 64, progress: Progress | None = None,
                    network: Network | None = None) -> list[dict]:
    """Complete the hole of every input image with `dataset`'s network of the run; returns one record per output.

    inputs: image files, folders (their image files) and glob patterns.
    hole:   a `size`×`size` square (default: the run's trained hole) with its top-left corner at
            `box` = (x, y) in input pixels, centred when None; or `mask`, a binary image of the
            input's size, white = hole (any shape).
    out:    for one input, a file (format from its extension) or a folder; for several, a folder.
            Default: the folder `completed/`. In a folder, each output is `<input stem>.png`, below
            the same sub-folders as the input relative to the inputs' common folder.
    side_by_side: also write `<output stem>-side-by-side.<ext>`: input-with-hole | completed | original.
    network: a `load_network(...)` result to reuse across calls (then `run` and `method` are not read).
    progress: called as progress(phase, done, total), phase "checking" then "completing".

    Everything (run, inputs, holes, outputs) is checked before anything is written; then outputs
    are written to temporary files and renamed into place only once all are complete.
    Records: {"input", "output", "side_by_side", "box": [x, y, w, h], "size": [w, h], "mode",
    "dataset", "method"}.
    """
    if batch_size < 1:
        raise UserError(f"--batch-size must be a whole number ≥ 1 (got {batch_size})")
    if mask is not None and (box is not None or size is not None):
        raise UserError("--mask gives the hole; it cannot be combined with --box or --hole")
    ck = find_checkpoint(run, dataset, method, task="ae") if network is None else None
    size = size if size is not None else (ck.cfg.hole if ck else network.hole)
    files, problems = expand_inputs(inputs)
    if not inputs:
        problems.append("no input image given")
    hole_mask = None
    if mask is not None:
        try:
            hole_mask = read_mask(Path(mask))
        except UserError as e:
            problems.append(f"--mask {e}")
        else:
            if not hole_mask.any():
                problems.append(f"--mask {mask} is empty: no white pixel marks a hole")
                hole_mask = None
    outputs, out_problems = plan_outputs(files, Path(out) if out is not None else None)
    problems += out_problems
    from concurrent.futures import ThreadPoolExecutor

    workers = min(8, available_cores())
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="jointnet-complete") as pool:
        # importing torch and loading the network (a second or two) overlaps with decoding the inputs
        # (always joined before returning or raising: no thread outlives the call)
        loading = _Background(lambda: network or network_from(ck, device))
        try:
            cache: dict[int, Decoded] = {}
            jobs: list[Job] = []
            if not out_problems and (mask is None or hole_mask is not None):
                jobs, more = check_inputs(files, outputs, box=box, size=size, mask=hole_mask, side_by_side=side_by_side,
                                    force=force, progress=progress, cache=cache, pool=pool)
                problems += more
            if problems:
                raise UserError(one_line(problems))
            net = loading.result()                      # a wrong checkpoint is still a UserError here
        finally:
            loading.join()
        return _run(net, jobs, cache, pool, batch_size=batch_size, progress=progress)


class _Background:
    """Run `fn` in a thread; `result()` waits and returns its value or raises its exception."""

    def __init__(self, fn: Callable[[], Any]):
        import threading

        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as e:          # handed to the caller of result()
                self._error = e

        self._thread = threading.Thread(target=target, name="jointnet-load")
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _run(net: Network, jobs: list[Job], cache: dict[int, Decoded], pool: Any, *, batch_size: int,
         progress: Progress | None) -> list[dict]:
    """Complete every job: decode (threads), inpaint (a batch at a time), encode to temporary files (threads);
    once all are written, rename them into place."""
    import torch

    from jointnet_cli.errors import RunFailure
    from jointnet_cli.store.atomic import fsync_dir

    for folder in {p.parent for j in jobs for p in (j.output, j.strip) if p is not None}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFailure(f"cannot create the folder {folder}: {e.strerror or e}") from None
    for target in (p for j in jobs for p in (j.output, j.strip) if p is not None):
        for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):   # left by a killed complete
            if stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # the network is small next to decoding and encoding, which use the cores
    writes: list[tuple[Any, Path]] = []    # (future of the temporary file, target)
    records = []
    submitted = [0]                        # len(writes) after each batch
    try:
        for start in range(0, len(jobs), batch_size):
            for future, _ in writes[:submitted[-2] if len(submitted) > 1 else 0]:
                future.result()            # the batch before the last is written: at most two wait in memory
            batch = jobs[start:start + batch_size]
            missing = [k for k in range(len(batch)) if start + k not in cache]
            for k, d in zip(missing, pool.map(decode_image, [batch[k].input for k in missing])):
                cache[start + k] = d
            decoded = [cache.pop(start + k) for k in range(len(batch))]
            for job, d in zip(batch, decoded):
                if (d.mode, d.size) != (job.mode, job.size):
                    raise RunFailure(f"{job.input} changed while jointnet was reading it")
            holes = [j.hole() for j in batch]
            filled = inpaint_many(net, [d.pixels for d in decoded], holes, [d.mode for d in decoded],
                                  batch_size=batch_size)
            for job, d, result, hole in zip(batch, decoded, filled, holes):
                writes.append((pool.submit(stage_file, job.output, result, d.icc_profile), job.output))
                if job.strip is not None:
                    holed = d.pixels.copy()
                    colour = MODES[d.mode][0] - (1 if d.mode in ("LA", "RGBA") else 0)
                    holed[hole, :colour] = 0                       # the hole as the network sees it: zeros
                    strip = side_by_side_strip(holed, result, d.pixels)
                    writes.append((pool.submit(stage_file, job.strip, strip, d.icc_profile), job.strip))
                records.append({"input": str(job.input), "output": str(job.output),
                                "side_by_side": str(job.strip) if job.strip else None, "box": job.box(),
                                "size": list(job.size), "mode": d.mode, "dataset": net.dataset, "method": net.method})
            submitted.append(len(writes))
            if progress:
                progress("completing", min(start + batch_size, len(jobs)), len(jobs))
        staged = [(future.result(), target) for future, target in writes]
        for tmp, target in staged:
            os.replace(tmp, target)
        writes = []
        for folder in {target.parent for _, target in staged}:
            fsync_dir(folder)
    except OSError as e:
        raise RunFailure(f"could not write the outputs: {e.strerror or e}") from e
    finally:
        torch.set_num_threads(threads)
        for future, _ in writes:                        # on failure: no temporary file stays behind
            future.cancel()
            if not future.cancelled() and future.exception() is None:
                future.result().unlink(missing_ok=True)
    return records
