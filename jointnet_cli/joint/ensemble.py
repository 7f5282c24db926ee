"""The n networks of a run, their optimizers, and their snapshot tensors."""

from __future__ import annotations

import copy

import torch
from torch import nn

from jointnet_cli.errors import UserError
from jointnet_cli.joint.layers import check_layers, layer_params


class Ensemble:
    """n copies θ_1..θ_n of one architecture, one Adam optimizer each.

    All copies start from the same initial weights (the template), so the
    distances the IRLS weighting sees measure what the data pulled apart.
    """

    def __init__(self, names: list[str], template: nn.Module, layers: list[list[str]], *,
                 lr: float, device: torch.device | str, chains: list[int] | None = None,
                 optimizers=None):
        check_layers(template, layers)
        self.names = list(names)
        self.layers = layers
        self.chains = chains or [len(layers)]         # players' layer counts (one chain for a single network)
        assert sum(self.chains) == len(layers)
        self.nets = [copy.deepcopy(template).to(device) for _ in names]
        for net in self.nets:
            net.train()
        self.params = [layer_params(net, layers) for net in self.nets]        # [i][l] -> tensors of θ_i^l
        # one or more optimizers per network (a GAN has one per player); each keeps its state across blocks
        make = optimizers or (lambda net, lr: [torch.optim.Adam(net.parameters(), lr=lr)])
        self.optimizers = [make(net, lr) for net in self.nets]
        self._rows: dict[int, list[torch.Tensor]] = {}       # parameter_rows' buffers, by layer

    @property
    def n(self) -> int:
        return len(self.nets)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer_rows(self) -> list[list[list[torch.Tensor]]]:
        """Per layer, per parameter tensor, the n networks' tensors themselves (no copy): [l][k][i]."""
        return [[[self.params[i][l][k] for i in range(self.n)] for k in range(len(self.params[0][l]))]
                for l in range(self.num_layers)]

    def parameter_rows(self, l: int) -> list[torch.Tensor]:
        """Scratch matrices for a copy of layer l's parameters, one (n, size) matrix per tensor, whose row i
        is for θ_i's tensor, flattened. Allocated on the first call for the layer and then reused (a fresh
        100 MB buffer costs its page faults on every first touch); the caller fills them."""
        if l not in self._rows:
            self._rows[l] = [torch.empty(self.n, p.numel(), dtype=p.dtype, device=p.device) for p in self.params[0][l]]
        return self._rows[l]

    # -- snapshot tensors ------------------------------------------------------
    def model_tensors(self) -> dict[str, torch.Tensor]:
        """`{dataset}/{key}` for every parameter and buffer of every network."""
        return {f"{name}/{k}": v for name, net in zip(self.names, self.nets) for k, v in net.state_dict().items()}

    @staticmethod
    def _param_names(net: nn.Module, opt: torch.optim.Optimizer) -> list[str]:
        """Names of an optimizer's parameters, in its state_dict's index order."""
        by_id = {id(p): k for k, p in net.named_parameters()}
        return [by_id[id(p)] for group in opt.param_groups for p in group["params"]]

    def first_non_finite(self) -> tuple[str, str] | None:
        """(dataset, tensor) of the first parameter, buffer or optimizer-state tensor holding NaN or inf
        (in snapshot order), or None. A tensor's sum is finite when all its values are (a huge finite
        sum's overflow is then checked element by element), so one cheap pass decides."""
        for name, net, opts in zip(self.names, self.nets, self.optimizers):
            named = [(k, t) for k, t in net.state_dict().items() if t.is_floating_point()]
            for opt in opts:
                pnames = self._param_names(net, opt)
                named += [(f"{pnames[idx]}/{key}", v) for idx, st in opt.state_dict()["state"].items()
                          for key, v in st.items() if torch.is_tensor(v) and v.is_floating_point()]
            if not named:
                continue
            home = named[0][1].device                    # Adam's step counts stay on the CPU beside CUDA tensors
            sums = torch.stack([t.sum().to(home) for _, t in named]).cpu()
            for k in (~torch.isfinite(sums)).nonzero().flatten().tolist():
                if not torch.isfinite(named[k][1]).all():
                    return name, named[k][0]
        return None

    def optimizer_tensors(self) -> dict[str, torch.Tensor]:
        """`{dataset}/{param}/{exp_avg|exp_avg_sq|step}` (each parameter has one optimizer)."""
        out: dict[str, torch.Tensor] = {}
        for name, net, opts in zip(self.names, self.nets, self.optimizers):
            for opt in opts:
                pnames = self._param_names(net, opt)
                for idx, st in opt.state_dict()["state"].items():
                    for key, value in st.items():
                        out[f"{name}/{pnames[idx]}/{key}"] = torch.as_tensor(value)
        return out

    def load_model_tensors(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        for name, net in zip(self.names, self.nets):
            own = net.state_dict()
            sub = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")}
            missing = sorted(set(own) - set(sub))
            if missing:
                raise UserError(f"{where} has no weights for {name}/{missing[0]} (another architecture or dataset list?)")
            for k, v in own.items():
                if sub[k].shape != v.shape:
                    raise UserError(
                        f"{where}: {name}/{k} has shape {tuple(sub[k].shape)}, the model needs {tuple(v.shape)}"
                    )
            net.load_state_dict({k: sub[k] for k in own})

    def load_optimizer_tensors(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        for name, net, opts in zip(self.names, self.nets, self.optimizers):
            params = dict(net.named_parameters())
            for opt in opts:
                state = {}
                for idx, pname in enumerate(self._param_names(net, opt)):
                    prefix = f"{name}/{pname}/"
                    entry = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
                    if entry:
                        if entry.get("exp_avg") is not None and entry["exp_avg"].shape != params[pname].shape:
                            raise UserError(f"{where}: optimizer state of {name}/{pname} does not fit the model")
                        state[idx] = entry
                opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
