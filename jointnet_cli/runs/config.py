"""The fixed configuration of a run (DESIGN §3–§4 `config.json`).

Torch-free: the CLI validates settings and creates run directories without
importing torch. Every setting has one default here; recipes and flags only
override it (defaults < recipe < flags).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from jointnet_cli.errors import UserError

RUN_FORMAT = "jointnet-run/1"

# task -> architectures that serve it; the first is the default.
TASK_ARCHS: dict[str, tuple[str, ...]] = {"ae": ("ae9",), "classify": ("convnet", "resnet18", "inception_v3"),
                                     "gan": ("dcgan", "began")}

# Settings that belong to one stage: free until that stage has started, then fixed by the work it has done
# (runs.configure.stage_conflicts names the iteration or stage that fixed them). A command that sets one
# for the stage it starts records it in config.json, which always holds the value in force.
STAGE_SETTINGS: dict[str, str] = {"epochs": "warmstart", "epochs_per_iter": "irls", "max_iters": "irls",
                                  "tol": "irls", "sigma": "irls", "anneal": "irls", "weight": "irls",
                                  "penalty": "irls"}

# Settings a later command may change on an existing run: the stage settings above (within their rule),
# and settings of each command (the schedule of the same objective, scoring, finetune/groupshare's own,
# checked there); every other setting is fixed by the first stage.
ADJUSTABLE = frozenset({*STAGE_SETTINGS, "schedule", "sync_every", "eval_every", "pretrain_epochs", "groups",
                        "precision", "lr"})
# Adjustable settings that config.json records as the value in force (rewritten when a command changes them;
# a new --lr is also logged in state.json["lr_changes"], with how far each method had trained).
IN_FORCE = (*STAGE_SETTINGS, "precision", "lr")

# How the n networks take their steps (DESIGN §1 "Schedules"); both minimize the same objective.
SCHEDULES = ("auto", "bcd", "batched")
BLOCKS = ("epoch", "step")                    # bcd's block: one epoch of a network, or one mini-batch
DEVICES = ("auto", "cpu", "cuda")
COUPLES = ("g", "d", "both")                  # gan: the coupled players
BASELINES = ("isolated", "shareall", "l2", "l2-partial", "l2-groups", "finetune", "groupshare")

# Settings that mean something for one task only: given for another task they are refused, and config.json
# records them only for their task.
TASK_ONLY: dict[str, tuple[str, ...]] = {"ae": ("hole",),
                                         "classify": ("pretrained", "init_weights", "augment", "crop_scale", "jitter", "flip"),
                                         "gan": ("latent", "couple", "gamma", "lambda_k")}

# The method's choices, with the paper's values: `--paper` sets exactly these (and runs created before the
# options existed read them for the keys they lack).
PAPER: dict[str, Any] = {"sigma": "fixed", "weight": "paper", "penalty": "raw", "apply": "grad",
                         "start": "random", "start_epochs": 0, "lam": 10.0}
CHOICES: dict[str, tuple[str, ...]] = {"sigma": ("auto", "fixed", "refit", "anneal"), "weight": ("paper", "gm"),
                                       "penalty": ("raw", "normalized"), "apply": ("grad", "prox"),
                                       "start": ("auto", "groups", "random", "shareall"), "evaluate_on": ("test", "holdout"),
                                       "precision": ("32", "bf16-mixed", "16-mixed", "auto")}


TRAINING, METHOD = "Training", "Method (README \"The method\"; defaults chosen on validation data)"


REQUIRED = object()    # a setting without a default


def setting(default: Any, help: str, *, shown: str | bool | None = None, panel: str = TRAINING) -> Any:
    """A RunConfig field with what `--help` says of it: its help, the default shown (None: the default
    itself; False: none) and its help panel. The CLI builds every configuration option from these."""
    meta = {"help": help, "shown": shown, "panel": panel}
    return field(metadata=meta) if default is REQUIRED else field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    """A run's fixed settings; each field's metadata holds its `--help` text (cli.options builds the flags)."""

    task: str = setting(REQUIRED, "Task: ae (image completion), classify or gan.", shown=False)
    datasets: tuple[str, ...] = setting(REQUIRED, "Comma list of prepared datasets, or @synth8 for a builtin collection.",
                                        shown=False)                        # order = network index i
    arch: str = setting("", "Architecture (ae: ae9; classify: convnet, resnet18, inception_v3; gan: dcgan, began).",
                        shown="the task's first")
    image_size: int = setting(0, "Image size; must match the data.", shown=False)   # 0: from the prepared data
    seed: int = setting(0, "Seed of initial weights, batch order and holes.")
    lam: float | str = setting(1.0, "λ, consistency strength: a number, or auto (chosen on a held-out part of each "
                               "training split).", shown="1 (--paper: 10)")
    lr: float = setting(1e-3, "Adam learning rate.")
    batch_size: int = setting(32, "Mini-batch size.")
    epochs: int = setting(10, "Warm-start epochs per dataset.")
    epochs_per_iter: int = setting(3, "Epochs per IRLS iteration.")
    max_iters: int = setting(8, "IRLS iterations at most.")
    tol: float = setting(1e-2, "Stop IRLS when δ ≤ tol.")
    block: str = setting("epoch", "BCD block: epoch (one epoch per network in turn, the paper) or step (round-robin "
                         "mini-batches).")
    schedule: str = setting("auto", "bcd (networks in turn against the others' anchors), batched (all networks step "
                            "together, vmapped, CUDA graphs on a GPU; same objective) or auto: batched on a GPU for ae9 "
                            "and convnet (5-7x faster for ae9 there), bcd otherwise (faster on CPUs; GANs; large "
                            "backbones). May change between stages of a run.")
    sync_every: int | None = setting(None, "Refresh every network's anchors (and, under torchrun, exchange parameters "
                                     "between processes) every K steps; 0 = once per epoch. Set, one process computes "
                                     "exactly what torchrun runs compute. Default: plain bcd in one process, 0 under "
                                     "torchrun.", shown=False)
    hole: int = setting(22, "ae: side of the square hole the network learns to fill.")
    width: int = setting(32, "Channels of the first layer (network width).")   # ae9: 32 → 2.0 M parameters
    pretrained: bool = setting(False, "classify: start from torchvision's ImageNet weights (needs the internet).",
                               shown=False)
    init_weights: str = setting("", "classify: start the backbone from a local .safetensors file.", shown=False)
    augment: bool = setting(True, "classify: Inception-style augmentation while training (recipe only).")
    crop_scale: float = setting(0.35, "classify: smallest area fraction of the random resized crop (recipe only).")
    jitter: float = setting(0.2, "classify: colour jitter strength, factors 1 ± jitter (recipe only).")
    flip: bool = setting(True, "classify: random horizontal flips in the augmentation; false where a mirror "
                               "changes the label, as it does a stripe direction (recipe only).")
    latent: int = setting(64, "gan: size of the latent z.")
    couple: str = setting("", "gan: coupled players g | d | both.", shown="dcgan both, began d")
    gamma: float = setting(0.5, "began: diversity ratio γ (recipe only).")
    lambda_k: float = setting(0.001, "began: learning rate λ_k of the control variable k_t (recipe only).")
    # -- the method's options (DESIGN §1b): defaults chosen on the synth8 validation copy (README "Choosing
    #    the defaults"); PAPER holds the paper's choices, `--paper` selects them --
    sigma: str = setting("auto", "σ schedule: fixed (from the warm start, paper), refit (recomputed before each "
                         "weighting), anneal (from every w ≈ 1, the warm start's problem, down to the refit value) "
                         "or auto: anneal for gan from a seeded start, fixed otherwise (README \"Choosing the "
                         "defaults\").", panel=METHOD)
    anneal: float = setting(1.4, "anneal: σ divided by this per iteration.", panel=METHOD)
    weight: str = setting("gm", "IRLS weight: paper (eq. 7, σ²/(σ²+d²)) or gm (σ⁴/(σ²+d²)², the exact majorizer "
                          "of ρ).", panel=METHOD)
    penalty: str = setting("raw", "raw (λ Σ w d², paper) or normalized (λ Σ w d²/σ², λ in data-loss units per "
                           "pair).", panel=METHOD)
    apply: str = setting("prox", "How the coupling acts: grad (a gradient the optimizer sees, paper) or prox (a "
                         "proximal step before each data step, decoupled from Adam as AdamW decouples weight "
                         "decay).", panel=METHOD)
    start: str = setting("auto", "groups (IRLS starts from one network per group the warm start finds, trained "
                         "--start-epochs on the group's union), random (every network from one seeded start, paper), "
                         "shareall (from one network trained --start-epochs on the union of all) or auto: groups for "
                         "ae and classify, random for gan (what won on validation data, README \"Choosing the "
                         "defaults\"). The start's epochs count in the budget. Under torchrun give random.",
                         panel=METHOD)
    start_epochs: int = setting(0, "start groups, shareall: its epochs (0: as many as the warm start's).",
                                panel=METHOD)
    group_ratio: float = setting(1.5, "start groups: datasets share a group when each one's loss under the "
                                 "other's warm-start network is at most this many times its own.", panel=METHOD)
    pretrain_epochs: int = setting(0, "finetune, groupshare: epochs of the shared pretraining, counted in the "
                                   "budget.", shown="half the budget", panel=METHOD)
    groups: str = setting("", "groupshare, l2-groups: one group label per dataset, in order (a,a,b,…). Default: the "
                          "manifests' groups.", shown=False, panel=METHOD)
    lambda_grid: str = setting("0.1,1,10", "--lambda auto: the λ values tried.", panel=METHOD)
    holdout: float = setting(0.2, "--lambda auto: fraction of each training split held out to score λ (the test "
                             "split is never read).", panel=METHOD)
    eval_every: int = setting(1, "Score the test split every K epochs while training (0: only at the end of each "
                              "stage; GAN scores are slow).")
    precision: str = setting("32", "Arithmetic of the training steps: 32, bf16-mixed, 16-mixed (autocast; fp16 with "
                             "a gradient scaler, bcd and one-loss tasks only) or auto (what measured fastest at "
                             "equal quality on the device: 32 on CPUs and CUDA so far). The coupling, distances, σ, "
                             "weights and checkpoints stay float32/float64. May change between stages of a run.")
    # internal: "holdout" marks a λ-search trial, scored on the held-out part (the test split is never read)
    evaluate_on: str = "test"
    extra: dict = field(default_factory=dict, compare=False)  # keys written by later features

    @property
    def start_method(self) -> str:
        """The start this run trains with (`auto` resolved by task)."""
        return start_method(self.start, self.task)

    @property
    def sigma_schedule(self) -> str:
        """The σ schedule this run's IRLS uses (`auto` resolved by task and start)."""
        return sigma_schedule(self.sigma, self.task, self.start_method)

    @property
    def start_budget(self) -> int:
        """Epochs per dataset of the start (groups, shareall): --start-epochs, 0 meaning the warm start's."""
        if self.start_method not in ("groups", "shareall"):
            return 0
        return self.start_epochs or self.epochs

    def to_json(self, *, layers: list[list[str]], data: dict[str, str], chains: list[int] | None = None,
                window_names: list[str] | None = None) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d.pop("sync_every")              # a setting of each command (like a flag), never fixed for the run
        d["datasets"] = list(self.datasets)
        d["lambda"] = d.pop("lam")
        for task, keys in TASK_ONLY.items():             # only the settings that apply to this run's task
            if task != self.task:
                for k in keys:
                    d.pop(k)
        out = {"format": RUN_FORMAT, **d, "layers": layers, "data": data, **self.extra}
        if chains:
            out["chains"] = chains
        if window_names:
            out["window_names"] = window_names
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = "config.json") -> "RunConfig":
        if not isinstance(d, dict):
            raise UserError(f"{where} is not a JSON object")
        fmt = d.get("format")
        if fmt != RUN_FORMAT:
            raise UserError(f"{where} has format {fmt!r}; this jointnet reads {RUN_FORMAT!r}")
        layers, chains, names, data = d.get("layers"), d.get("chains"), d.get("window_names"), d.get("data", {})
        if layers is not None and not (isinstance(layers, list) and all(
                isinstance(group, list) and all(isinstance(k, str) for k in group) for group in layers)):
            raise UserError(f"{where}: 'layers' must be a list of lists of parameter names")
        if chains is not None and not (isinstance(chains, list) and all(
                isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in chains)
                and (layers is None or sum(chains) == len(layers))):
            raise UserError(f"{where}: 'chains' must be whole numbers ≥ 1 adding up to the number of layers")
        if names is not None and not (isinstance(names, list) and all(isinstance(x, str) for x in names)):
            raise UserError(f"{where}: 'window_names' must be a list of names")
        if not (isinstance(data, dict) and all(isinstance(v, str) for v in data.values())):
            raise UserError(f"{where}: 'data' must map dataset names to sha256 strings")
        values = {k: v for k, v in d.items() if k not in ("format", "layers", "data", "chains", "window_names", "extra")}
        if "lambda" in values:
            values["lam"] = values.pop("lambda")
        names = {f.name for f in fields(cls)}
        extra = {k: values.pop(k) for k in list(values) if k not in names}
        ds = values.get("datasets") or ()
        if not isinstance(ds, list) or not all(isinstance(x, str) for x in ds):
            raise UserError(f"{where}: 'datasets' must be a list of names")
        values["datasets"] = tuple(ds)
        for k, v in PAPER.items():                 # a run made before the method's options: the paper's method
            if k != "lam":
                values.setdefault(k, v)
        wrong = [k for k in ("task", "arch", "block", "schedule", "couple", "init_weights", *CHOICES, "groups",
                             "lambda_grid")
                 if k in values and not isinstance(values[k], str)]
        if wrong:
            raise UserError(f"{where}: {wrong[0]!r} must be a string")
        problems = validate(values, require=("task", "datasets"), task_options=False)
        if problems:
            raise UserError(f"{where} is not a valid run configuration: " + "; ".join(problems))
        return cls(**values, extra=extra)

    def with_adjustments(self, given: dict[str, Any]) -> "RunConfig":
        return replace(self, **{k: v for k, v in given.items() if k in ADJUSTABLE})


# The option a user types for a RunConfig field, where the two differ (`--lambda` sets `lam`).
OPTION_OF_FIELD = {"lam": "lambda", "image_size": "size"}
_TYPE_OF = {"int": int, "float": float, "bool": bool, "str": str, "tuple[str, ...]": str, "float | str": float,
            "int | None": int}


def config_options() -> dict[str, str]:
    """Every run-configuration option (its name with underscores) → its RunConfig field: the one list
    the commands, recipes and config.json share (`evaluate_on` is internal: set by λ trials only)."""
    return {OPTION_OF_FIELD.get(f.name, f.name): f.name for f in fields(RunConfig)
            if f.name not in ("extra", "evaluate_on")}


def option_types() -> dict[str, type]:
    """The type a recipe must give for each run-configuration option (from RunConfig's annotations)."""
    types = {f.name: _TYPE_OF[f.type] for f in fields(RunConfig) if f.name != "extra"}
    return {option: types[name] for option, name in config_options().items()}


def lambda_grid(text: str) -> list[float]:
    """The λ values of `--lambda-grid` ("0.1,1,10")."""
    return [float(x) for x in str(text).split(",") if x.strip()]


def did_you_mean(value: Any, allowed: Any) -> str:
    """'; did you mean 'x'?' for the nearest allowed spelling, or ''."""
    import difflib

    near = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def start_method(start: str, task: str | None) -> str:
    """`--start auto`: learned groups for ae and classify, a seeded start for gan (where groups lost on the
    validation copy, README "Choosing the defaults"); any other value is itself."""
    if start != "auto":
        return start
    return "random" if task == "gan" else "groups"


def sigma_schedule(sigma: str, task: str | None, start: str) -> str:
    """`--sigma auto`: `anneal` for gan from a seeded start (`random`), `fixed` otherwise. Annealing
    begins at the warm start's L2 problem (every w ≈ 1) and relaxes it by a factor per iteration, so IRLS
    stays near that problem for longer: on the validation copy that helped gan, where L2 coupling is the
    best baseline, tied on classify and hurt ae, where it is not; after learned groups it pulls the groups
    back together (README "Choosing the defaults"); a shareall start was not measured. Any other value is
    itself."""
    if sigma != "auto":
        return sigma
    return "anneal" if task == "gan" and start == "random" else "fixed"


def joint_stages(warmstart_epochs: int, start_epochs: int, method: str) -> str:
    """How joint spends its budget before IRLS, in words: "4 warm start + 8 learned groups", …"""
    stages = f"{warmstart_epochs} warm start"
    if start_epochs and method == "shareall":
        return f"{start_epochs} shareall start + {stages}"
    if start_epochs and method == "groups":
        return f"{stages} + {start_epochs} learned groups"
    return stages


def group_members(labels: list[str]) -> list[list[int]]:
    """The datasets (by index) of each group, groups in order of first member: ["a", "b", "a"] → [[0, 2], [1]]."""
    return [[i for i, x in enumerate(labels) if x == label] for label in dict.fromkeys(labels)]


def inapplicable(task: str, values: dict[str, Any]) -> list[str]:
    """Settings given for a task they do not apply to (refused: no flag is silently ignored)."""
    out = []
    for owner, keys in TASK_ONLY.items():
        if owner != task:
            out += [f"--{k.replace('_', '-')} applies to --task {owner} only (this run is {task})"
                    for k in keys if k in values]
    return out


# Settings whose value `auto` each run resolves: field → the RunConfig property holding what the run uses.
RESOLVED = {"start": "start_method", "sigma": "sigma_schedule"}

# option → (the setting it depends on, the values under which it applies)
DEPENDS: dict[str, tuple[str, tuple[Any, ...]]] = {"anneal": ("sigma_schedule", ("anneal",)),
                                                   "start_epochs": ("start_method", ("shareall", "groups")),
                                                   "group_ratio": ("start_method", ("groups",)),
                                                   "lambda_grid": ("lam", ("auto",)),
                                                   "holdout": ("lam", ("auto",))}


def unused_options(given: dict[str, Any], effective: "RunConfig") -> list[str]:
    """Options given that the run's settings make meaningless (`--anneal` without `--sigma anneal`, …)."""
    out = []
    for key, (on, values) in DEPENDS.items():
        if key == "holdout" and effective.evaluate_on == "holdout":      # a λ trial scores on the holdout
            continue
        default = next(f.default for f in fields(RunConfig) if f.name == key)
        if key in given and given[key] != default and getattr(effective, on) not in values:
            name = next((f for f, prop in RESOLVED.items() if prop == on), on)   # the field a user sets
            flag = "--lambda" if name == "lam" else f"--{name}"
            has = getattr(effective, on)
            if name in RESOLVED and getattr(effective, name) == "auto":
                has = f"auto, which is {has} for this run"
            out.append(f"--{key.replace('_', '-')} applies with {flag} {' or '.join(map(str, values))} only "
                       f"(the run has {flag} {has})")
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and v == v and abs(v) != float("inf")


def validate(values: dict[str, Any], require: tuple[str, ...] = (), *, task_options: bool = True) -> list[str]:
    """Every problem with a set of settings, named by the flag a user types. `task_options`: refuse
    settings of another task (off when reading a stored config.json, which older versions wrote in full)."""
    problems: list[str] = []
    for key in require:
        if values.get(key) in (None, "", ()):
            problems.append(f"--{key.replace('_', '-')} is required")
    task = values.get("task")
    if task is not None and (not isinstance(task, str) or task not in TASK_ARCHS):
        problems.append(f"--task {task!r} is not one of {', '.join(TASK_ARCHS)}{did_you_mean(task, TASK_ARCHS)}")
    elif task is not None and task_options:
        problems += inapplicable(task, values)
    arch = values.get("arch")
    if arch and task in TASK_ARCHS and arch not in TASK_ARCHS[task]:
        problems.append(f"--arch {arch!r} does not serve task {task!r} (choose {', '.join(TASK_ARCHS[task])})")
    positive_ints = ("batch_size", "epochs", "epochs_per_iter", "max_iters", "hole", "width", "latent")
    for key in positive_ints:
        if key in values and not (_is_int(values[key]) and values[key] >= 1):
            problems.append(f"--{key.replace('_', '-')} must be a whole number ≥ 1 (got {values[key]!r})")
    for key, flag in (("lam", "--lambda"), ("lr", "--lr"), ("tol", "--tol")):
        if key == "lam" and values.get(key) == "auto":
            continue
        if key in values and not (_is_num(values[key]) and values[key] > 0):
            problems.append(f"{flag} must be a number > 0{' or auto' if key == 'lam' else ''} (got {values[key]!r})")
    for key, allowed in CHOICES.items():
        if key in values and values[key] not in allowed:
            problems.append(f"--{key} must be {' or '.join(allowed)} (got {values[key]!r}{did_you_mean(values[key], allowed)})")
    if "anneal" in values and not (_is_num(values["anneal"]) and values["anneal"] > 1):
        problems.append(f"--anneal must be a number > 1 (got {values['anneal']!r})")
    for key in ("start_epochs", "pretrain_epochs", "eval_every"):
        if key in values and not (_is_int(values[key]) and values[key] >= 0):
            problems.append(f"--{key.replace('_', '-')} must be a whole number ≥ 0 (got {values[key]!r})")
    if "group_ratio" in values and not (_is_num(values["group_ratio"]) and values["group_ratio"] >= 1):
        problems.append(f"--group-ratio must be a number ≥ 1 (got {values['group_ratio']!r})")
    if "holdout" in values and not (_is_num(values["holdout"]) and 0 < values["holdout"] < 1):
        problems.append(f"--holdout must be in (0, 1) (got {values['holdout']!r})")
    if "lambda_grid" in values:
        try:
            grid = lambda_grid(values["lambda_grid"])
        except ValueError:
            grid = []
        if not grid or any(g <= 0 for g in grid):
            problems.append(f"--lambda-grid must be a comma list of numbers > 0 (got {values['lambda_grid']!r})")
    if values.get("sync_every") is not None and values.get("schedule") == "batched":
        problems.append("--sync-every applies to --schedule bcd (batched steps every network together, nothing to sync)")
    if values.get("sync_every") is not None and not (_is_int(values["sync_every"]) and values["sync_every"] >= 0):
        problems.append(f"--sync-every must be a whole number ≥ 0 (got {values['sync_every']!r})")
    if "seed" in values and not (_is_int(values["seed"]) and values["seed"] >= 0):
        problems.append(f"--seed must be a whole number ≥ 0 (got {values['seed']!r})")
    if "image_size" in values and not (_is_int(values["image_size"]) and values["image_size"] >= 0):
        problems.append(f"--size must be a whole number (got {values['image_size']!r})")
    if "crop_scale" in values and not (_is_num(values["crop_scale"]) and 0 < values["crop_scale"] <= 1):
        problems.append(f"crop-scale must be in (0, 1] (got {values['crop_scale']!r})")
    if "jitter" in values and not (_is_num(values["jitter"]) and 0 <= values["jitter"] < 1):
        problems.append(f"jitter must be in [0, 1) (got {values['jitter']!r})")
    for key in ("pretrained", "augment", "flip"):
        if key in values and not isinstance(values[key], bool):
            problems.append(f"{key} must be true or false (got {values[key]!r})")
    if values.get("pretrained") and values.get("init_weights"):
        problems.append("--pretrained and --init-weights exclude each other")
    if values.get("arch") == "convnet" and values.get("pretrained"):
        problems.append("--pretrained: convnet has no pretrained weights (use resnet18 or inception_v3)")
    if "couple" in values and values["couple"] not in ("", "g", "d", "both"):
        problems.append(f"--couple must be g, d or both (got {values['couple']!r})")
    if "gamma" in values and not (_is_num(values["gamma"]) and 0 < values["gamma"] <= 1):
        problems.append(f"gamma must be in (0, 1] (got {values['gamma']!r})")
    if "lambda_k" in values and not (_is_num(values["lambda_k"]) and values["lambda_k"] > 0):
        problems.append(f"lambda-k must be > 0 (got {values['lambda_k']!r})")
    if "block" in values and values["block"] not in BLOCKS:
        problems.append(f"--block must be epoch or step (got {values['block']!r}{did_you_mean(values['block'], BLOCKS)})")
    if values.get("precision") == "16-mixed" and values.get("schedule") == "batched":
        problems.append("--precision 16-mixed trains with --schedule bcd (batched takes bf16-mixed or 32)")
    if values.get("precision") == "16-mixed" and values.get("task") == "gan":
        problems.append("--precision 16-mixed: GAN players train in bf16-mixed or 32 (no gradient scaler for two players)")
    if values.get("block") == "step" and values.get("schedule") == "batched":
        problems.append("--block step applies to --schedule bcd (batched steps every network at once, there is no block)")
    if values.get("block") == "step" and values.get("sync_every") is not None:
        problems.append("--block step and --sync-every exclude each other (synchronised bcd trains whole epochs "
                        "between anchor refreshes)")
    if "schedule" in values and values["schedule"] not in SCHEDULES:
        problems.append(f"--schedule must be auto, bcd or batched (got {values['schedule']!r}"
                        f"{did_you_mean(values['schedule'], SCHEDULES)})")
    elif values.get("schedule") == "batched" and values.get("task") == "gan":
        problems.append("--schedule batched trains one loss per network; GAN runs (D then G steps) use --schedule bcd")
    ds = values.get("datasets")
    if ds is not None and not (isinstance(ds, (list, tuple)) and all(isinstance(x, str) for x in ds)):
        problems.append("datasets must be a list of names")
    return problems
