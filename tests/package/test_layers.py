"""The package is layered: every import points down (or within its own package), and no module imports
itself back through others. Lazy imports (inside functions) count too."""

import ast
from pathlib import Path

import jointnet_cli

ROOT = Path(jointnet_cli.__file__).parent

# bottom → top; a module may import from its own layer's package or any lower layer
LAYERS = [
    {"errors", "wording", "seeding"},       # words and errors every layer uses
    {"store"},                              # atomic writes, safetensors and JSON files
    {"data"},                               # prepared datasets: format, ingest, loader, synth8
    {"models"},                             # architectures and their layer lists
    {"tasks"},                              # losses and metrics of ae, classify, gan
    {"runs"},                               # run configuration and directory
    {"joint"},                              # the method: weights, schedules, stages
    {"report"},                             # evaluation, tables, plots, graphs
    {"apply"},                              # using trained runs: complete, sample, quickstart
    {"cli", "__main__"},                    # the command line
]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}

    def known(name: str) -> str:
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jointnet_cli"):
                targets |= {known(f"{node.module}.{a.name}") for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names if a.name.startswith("jointnet_cli")}
        graph[name] = targets - {name, "jointnet_cli"}
    return graph


def layer(module: str) -> str:
    return module.split(".")[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_every_package_has_a_layer():
    assert {layer(m) for m in import_graph() if m.count(".")} <= set(RANK)


def test_every_import_points_down():
    upward = [f"{m} imports {t}" for m, targets in import_graph().items() if m.count(".")
              for t in targets if RANK[layer(t)] > RANK[layer(m)]]
    assert upward == []


def test_no_module_imports_itself_back():
    graph = import_graph()
    assert cycles(graph) == []
    packages = {}
    for m, targets in graph.items():
        for t in targets:
            if layer(m) != layer(t):
                packages.setdefault(layer(m), set()).add(layer(t))
    assert cycles(packages) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
