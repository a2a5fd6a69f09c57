"""Package layering: avgen's units (its top-level modules and packages) import each other without cycles
and only downward through ``LAYERS``.

Every ``import`` of an avgen module counts, at module top or inside a function: a function-level import
hides a cycle from Python, not from a reader. The root package ``avgen`` is the bottom: anything may take
``__version__`` from it, because it imports nothing of avgen itself (its names load on first use).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avgen"

# Lowest first. A unit may import units of lower layers, and siblings of its own layer as long as that makes
# no cycle (test_no_import_cycles).
LAYERS: list[list[str]] = [
    ["errors"],
    ["config", "atomic", "dsp", "checks", "_optional"],  # settings, atomic files, signal maths, media value
    # checks, optional packages
    ["tokens", "weights", "writer"],  # sequence packing, weight files, the media writer (arrays in)
    ["clip"],  # AVClip (``AVClip.save`` writes through the writer)
    ["reader", "geometry", "io"],  # media files in, the latent grid of a clip, the io facade
    ["codecs", "model", "data"],  # latent codecs, the DiT and text encoder, datasets
    ["diffusion"],  # paths, samplers and guidance around a model
    ["pipeline_config", "pipeline", "pipeline_calls", "pipeline_output", "limits"],  # prompt in, AVClip out;
    # the pipeline's settings, call aliases and outputs; resource limits of a generation
    ["export", "metrics"],  # shipping a pipeline, scoring clips and models
    ["train"],  # the loop, its tasks (codecs, joint model) and recipes
    ["generate", "demo", "model_cli", "cli"],  # commands
]


def _unit_of(module: str) -> str:
    """``avgen.codecs.audio`` -> ``codecs``; the root package is ``avgen``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "avgen"


def _is_unit(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file()


def _from_root(name: str, lazy: dict[str, str]) -> str:
    """The module ``from avgen import name`` loads."""
    if _is_unit(name):
        return f"avgen.{name}"
    return lazy.get(name, "avgen")


def _module_of(path: Path) -> tuple[str, str]:
    """(module, package its relative imports resolve against) of a file under avgen/."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), ".".join(parts[:-1])
    return ".".join(parts), ".".join(parts[:-1])


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """Every avgen module ``path`` imports, anywhere in the file, with its line."""
    _, package = _module_of(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module == "avgen":  # ``from avgen import x``: unit x, the module of a lazy name, or the root
                lazy = _literal("__init__.py", "_LAZY")
                found += [(_from_root(a.name, lazy), node.lineno) for a in node.names]
            else:
                found.append((module, node.lineno))
    return [(m, line) for m, line in found if m == "avgen" or m.startswith("avgen.")]


def unit_edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) -> the ``file:line`` of each import behind that edge."""
    edges: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _unit_of(_module_of(path)[0])
        for module, line in _imported_modules(path):
            dst = _unit_of(module)
            if dst != src:
                edges[(src, dst)].append((str(path.relative_to(PACKAGE.parent)), line))
    return {edge: [f"{file}:{line}" for file, line in sorted(set(where))] for edge, where in edges.items()}


def _units() -> set[str]:
    files = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return files | {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def _cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each sorted."""
    graph: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(graph)):
        if v not in index:
            visit(v)
    return found


def test_layers_name_every_unit_once() -> None:
    named = [u for layer in LAYERS for u in layer]
    assert len(named) == len(set(named)), "a unit is named in two layers"
    assert set(named) == _units(), (
        f"LAYERS lacks {sorted(_units() - set(named))} / names missing units {sorted(set(named) - _units())}"
    )


def test_root_package_imports_nothing_of_avgen() -> None:
    init = PACKAGE / "__init__.py"
    assert _imported_modules(init) == [], "avgen/__init__.py must load its names lazily (see _LAZY)"


def _shortest_cycles(edges: dict[tuple[str, str], list[str]], component: list[str]) -> list[list[str]]:
    """For each unit of ``component``, a shortest cycle through it (breadth-first), without repeats."""
    inside = set(component)
    cycles: set[tuple[str, ...]] = set()
    for start in component:
        parent: dict[str, str] = {}
        frontier, seen = [start], {start}
        while frontier and start not in parent:
            step = []
            for a in frontier:
                for x, b in sorted(edges):
                    if x == a and b in inside and (b == start or b not in seen):
                        parent.setdefault(b, a)
                        seen.add(b)
                        step.append(b)
            frontier = step
        path, v = [start], parent[start]
        while v != start:
            path.append(v)
            v = parent[v]
        path.reverse()  # start ... -> start
        i = path.index(min(path))
        cycles.add(tuple(path[i:] + path[:i]))
    return [list(c) for c in sorted(cycles, key=lambda c: (len(c), c))]


def test_no_import_cycles() -> None:
    edges = unit_edges()
    report = []
    for component in _cycles(edges):
        for cycle in _shortest_cycles(edges, component):
            report.append("cycle: " + " -> ".join(cycle + cycle[:1]))
            for a, b in zip(cycle, cycle[1:] + cycle[:1]):
                report.append(f"  {a} -> {b}: {', '.join(edges[(a, b)])}")
    assert not report, "\n".join(report)


def test_imports_go_down_the_layers() -> None:
    layer_of = {u: i for i, layer in enumerate(LAYERS) for u in layer}
    upward = [
        f"{a} (layer {layer_of[a]}) -> {b} (layer {layer_of[b]}): {', '.join(where)}"
        for (a, b), where in sorted(unit_edges().items())
        if b != "avgen" and layer_of[b] > layer_of[a]
    ]
    assert not upward, "imports up the layers:\n" + "\n".join(upward)


def _top_level_names(path: Path) -> set[str]:
    """Names bound at the top of ``path``: definitions, assignments and imports."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _defines(module: str, name: str) -> bool:
    """Whether ``module``'s file binds ``name`` at its top (read, not imported: commands pull in torch)."""
    parts = module.split(".")[1:]
    for path in (PACKAGE.joinpath(*parts).with_suffix(".py"), PACKAGE.joinpath(*parts, "__init__.py")):
        if parts and path.is_file():
            return name in _top_level_names(path)
    return False


def _literal(file: str, variable: str) -> dict:
    """The dict literal assigned to ``variable`` at the top of ``avgen/<file>``."""
    for node in ast.parse((PACKAGE / file).read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == variable for t in targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"avgen/{file} assigns no {variable}")


def test_import_strings_name_real_definitions() -> None:
    """The names loaded by string, which the import graph does not see, exist: the lazy names of ``avgen``
    and ``avgen.metrics`` and the ``avgen`` subcommands."""
    targets = [(module, name) for name, module in _literal("__init__.py", "_LAZY").items()]
    targets += [(module, name) for name, module in _literal("metrics/__init__.py", "_EXPORTS").items()]
    targets += [tuple(target.split(":")) for target, _ in _literal("cli.py", "COMMANDS").values()]
    targets += [tuple(target.split(":")) for target in _literal("cli.py", "SUBCOMMANDS").values()]
    missing = [f"{m}:{n}" for m, n in targets if not _defines(m, n)]
    assert not missing, f"nothing defines {missing}"
