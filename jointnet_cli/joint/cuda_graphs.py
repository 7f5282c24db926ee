"""CUDA graphs for the batched schedule: a step of all n networks recorded once per batch shape, then replayed.

The networks this project trains are small: on a GPU a step is bound by the time the CPU takes to
launch ~1000 small kernels, not by the arithmetic. `StepGraphs` records a whole step (the gradients
`batched` computes and the optimizer's update) as one CUDA graph per batch shape and replays it, with
everything the step reads or writes (parameters, optimizer state, the stacked statistics, the anchor
terms, the batch) kept at one address across steps and rounds.

What it takes from the schedule is a function that computes the step's gradients; the math lives in
`joint/batched.py`. The first `warmup_steps` steps of each shape run eagerly (libraries initialise
lazily on first use, and the optimizer creates its state on a first step); a recording is replayed only
while the task, the optimizer's settings, the precision and the addresses it was recorded against stay
the same. If recording fails, a warning says so and every later step runs eagerly.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple

import torch

WARMUP_STEPS = 3        # eager full steps before one is recorded: libraries initialise lazily on first use

# Computes a full step's gradients into the parameters' .grad from the stacked batch (x, target);
# `every_layer` asks for uncoupled layers' (zero) pull too, so that one recording serves every coupling.
Gradients = Callable[[torch.Tensor, torch.Tensor, bool], None]


class Recording(NamedTuple):
    """A full step recorded as a CUDA graph, the batch it reads (copy the next batch in, then replay),
    and what it was recorded against: it is replayed only while these stay the same."""
    graph: torch.cuda.CUDAGraph
    x: torch.Tensor
    target: torch.Tensor
    against: tuple          # (task, optimizer settings and precision, addresses of the parameters and their state)


def recorded_against(task: object, optimizer: torch.optim.Optimizer, precision_mode: str) -> tuple:
    """What a recorded step depends on outside itself: the task, the optimizer's settings and the
    precision (fixed in the recording), and where the parameters and the optimizer's state lie."""
    settings = tuple((k, v) for k, v in optimizer.param_groups[0].items() if k != "params") \
        + (("precision", precision_mode),)
    addresses = tuple(t.data_ptr() for p, st in optimizer.state.items() for t in (p, *st.values()))
    return task, settings, addresses


class StepGraphs:
    """The recorded full steps of one ensemble's batched rounds, by batch shape.

    `enabled` says whether steps are recorded at all (on a CUDA device, unless turned off or a
    recording failed). Per round: `prepare` before the first step, `step` for each full step,
    `release` after the last.
    """

    def __init__(self, warmup_steps: int = WARMUP_STEPS) -> None:
        if warmup_steps < 1:
            raise ValueError("warmup_steps must be at least 1: optimizers create their state on a first step")
        self.warmup_steps = warmup_steps
        self.enabled = False
        self.recordings: dict[tuple, Recording] = {}               # batch shape → its recorded step
        self.warm: dict[tuple, int] = {}                           # batch shape → eager steps since recordings ended
        self.steps: dict[torch.Tensor, torch.Tensor] = {}          # parameter → its Adam step count on the device

    def reset(self, enabled: bool) -> None:
        """A new ensemble: forget every recording and step count."""
        self.enabled = enabled
        self.recordings.clear()
        self.warm.clear()
        self.steps.clear()

    def optimizer_overrides(self, defaults: dict) -> dict:
        """Settings the round's optimizer needs to be recorded: `capturable` (Adam's bias corrections and
        step counts on the device; the update differs only by rounding)."""
        return {"capturable": True} if self.enabled and "capturable" in defaults else {}

    def prepare(self, optimizer: torch.optim.Optimizer, task: object, precision_mode: str) -> None:
        """Before a round's steps: step counts on the device; recordings made against other state
        (a resume loaded new tensors), settings or task are dropped, to warm up and record again."""
        if not self.enabled:
            return
        self._steps_on_device(optimizer)
        now = recorded_against(task, optimizer, precision_mode)
        if any(r.against[0] is not task or r.against[1:] != now[1:] for r in self.recordings.values()):
            self.recordings.clear()
            self.warm.clear()

    @staticmethod
    def release(optimizer: torch.optim.Optimizer) -> None:
        """After a round: step counts back on the CPU, as an optimizer that is not recorded keeps them."""
        on_device = [st for st in optimizer.state.values() if "step" in st and st["step"].device.type != "cpu"]
        if on_device:                                               # one copy for all
            values = torch.stack([st["step"] for st in on_device]).cpu()
            for st, v in zip(on_device, values):
                st["step"] = v.clone()

    def _steps_on_device(self, optimizer: torch.optim.Optimizer) -> None:
        """Capturable Adam counts steps on the device: give each parameter's state one tensor for good."""
        moving = [(p, st) for p, st in optimizer.state.items() if "step" in st and st["step"] is not self.steps.get(p)]
        if moving:
            values = torch.stack([st["step"] for _, st in moving]).to(moving[0][0].device)   # one copy for all
            for (p, st), v in zip(moving, values):
                dev = self.steps.setdefault(p, torch.zeros((), dtype=st["step"].dtype, device=p.device))
                dev.copy_(v)
                st["step"] = dev

    def step(self, optimizer: torch.optim.Optimizer, gradients: Gradients, xs: list[torch.Tensor],
             targets: list[torch.Tensor], task: object, precision_mode: str) -> None:
        """One full step on the n batches `xs`, `targets` of one shape, the optimizer's update included:
        eager while that shape warms up, then recorded once and replayed."""
        shape = (torch.Size((len(xs), *xs[0].shape)), xs[0].dtype, torch.Size((len(targets), *targets[0].shape)),
                 targets[0].dtype)                                     # of the stacked batch
        if shape in self.recordings:
            recording = self.recordings[shape]
            torch.stack(xs, out=recording.x)                           # the batch where the recording reads it
            torch.stack(targets, out=recording.target)
            recording.graph.replay()
            return
        x, target = torch.stack(xs), torch.stack(targets)
        states = [bool(st) for st in optimizer.state.values()]
        if self.warm.get(shape, 0) < self.warmup_steps or (any(states) and not all(states)):   # state made on a step
            side = torch.cuda.Stream()                                  # warm up off the capturing stream
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                gradients(x, target, True)
                optimizer.step()
            torch.cuda.current_stream().wait_stream(side)
            self.warm[shape] = self.warm.get(shape, 0) + 1
            return
        self._steps_on_device(optimizer)
        optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):                              # records; runs nothing
                gradients(x, target, True)
                optimizer.step()
        except RuntimeError as e:                                     # step eagerly from now on
            cause = e.__context__ or e                                 # (ending the capture raises a second error)
            warnings.warn(f"recording the batched step as a CUDA graph failed, the steps run eagerly: {cause}",
                          RuntimeWarning, stacklevel=2)
            self.enabled = False
            optimizer.zero_grad(set_to_none=True)
            gradients(x, target, False)
            optimizer.step()
            return
        self.recordings[shape] = Recording(graph, x, target, recorded_against(task, optimizer, precision_mode))
        graph.replay()
