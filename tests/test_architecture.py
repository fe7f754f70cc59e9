"""The library's architecture: imports point one way (no circle, also through imports inside functions), no
private name crosses a module, modules stay small, and only resolution writes to a config."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "hybridwrap"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(name: str) -> bool:
    return (REPO / Path(*name.split(".")) / "__init__.py").is_file()


def import_graph() -> dict[str, set[str]]:
    """module -> the hybridwrap modules it imports anywhere in its body (module level or inside functions)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if _is_package(name) else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from . import augment` imports the submodule; `from .serialization import f` the module itself
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [base] + subs
            for t in targets:
                while t and t not in modules:  # `from .data.augment import normalize` -> hybridwrap.data.augment
                    t = t.rsplit(".", 1)[0] if "." in t else ""
                if t and t != name and t.startswith("hybridwrap"):
                    graph[name].add(t)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_library_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


# who may import the training package and the command line: the layers above them (timm's rule: _hub imports
# models, never the reverse)
MAY_IMPORT_TRAIN = ("hybridwrap.train", "hybridwrap.train_cli", "hybridwrap.cli", "hybridwrap.tune")
MAY_IMPORT_CLI = ("hybridwrap.cli", "hybridwrap.train.__main__")


def test_dependencies_point_down_from_the_cli_to_training_to_the_model():
    graph = import_graph()
    for module, imports in graph.items():
        if not module.startswith(MAY_IMPORT_TRAIN):
            assert not [m for m in imports if m == "hybridwrap.train" or m.startswith("hybridwrap.train.")], module
        if not module.startswith(MAY_IMPORT_CLI):
            assert not [m for m in imports if m in ("hybridwrap.cli", "hybridwrap.train_cli")], module
    below_model = ("hybridwrap.mirror", "hybridwrap.registry", "hybridwrap.plugin_utils", "hybridwrap.weights",
                   "hybridwrap.config", "hybridwrap.errors", "hybridwrap.teachers", "hybridwrap.losses")
    for module in below_model:
        assert not {"hybridwrap.model", "hybridwrap.serialization", "hybridwrap.hub"} & graph[module], module


def test_no_library_module_is_over_400_lines():
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > 400}, "split these modules by concern"


def private_imports(paths) -> list[str]:
    """``from hybridwrap.x import _name`` (or a relative one) in any of ``paths``: a private name used across modules."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("hybridwrap")):
                found += [f"{path.name}:{node.lineno} {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module(tmp_path):
    assert private_imports(PACKAGE.rglob("*.py")) == []
    assert private_imports((REPO / "benchmarks").rglob("*.py")) == []
    bad = tmp_path / "bad.py"
    bad.write_text("from .hub import _upload\nfrom hybridwrap.ablation import public\n")
    assert private_imports([bad]) == ["bad.py:1 _upload"]  # the check finds what it looks for


# where a config's fields may be assigned: the config itself (its parsing and copies), the config a --dataset starts
# from, the command line turning arguments into overrides, and the resolution of what a run will train; every other
# layer only reads the config (and a run's, frozen by resolution.resolve, refuses assignment: tests/test_train.py)
CONFIG_WRITERS = {"config.py", "dataset_configs.py", "resolution.py", "train_cli.py", "cli.py"}
CONFIG_NAMES = {"cfg", "base", "checked", "c"}  # the names a TrainConfig goes by in the library


def config_assignments(path: Path) -> list[str]:
    """Every ``cfg.section.field = ...`` (also augmented, unpacked, or setattr(cfg..., ...)) in ``path``."""

    def rooted(node) -> bool:
        while isinstance(node, (ast.Attribute, ast.Call)):
            node = node.value if isinstance(node, ast.Attribute) else (node.args[0] if node.args else node.func)
        return isinstance(node, ast.Name) and node.id in CONFIG_NAMES

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
        for target in targets:
            found += [f"{path.name}:{node.lineno} {ast.unparse(t)}" for t in ast.walk(target)
                      if isinstance(t, ast.Attribute) and isinstance(t.ctx, ast.Store) and rooted(t)]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                and node.args and rooted(node.args[0])):
            found.append(f"{path.name}:{node.lineno} setattr({ast.unparse(node.args[0])}, ...)")
    return found


def test_no_layer_after_resolution_assigns_to_a_config_field(tmp_path):
    found = [hit for path in PACKAGE.rglob("*.py") if path.name not in CONFIG_WRITERS
             for hit in config_assignments(path)]
    assert found == [], "read the config; resolve its open fields in resolution.py, copy it with config.replaced"
    probe = tmp_path / "probe.py"
    probe.write_text("cfg.model.in_chans = 3\na.b = 1\nsetattr(getattr(cfg, 'data'), 'path', 'x')\n"
                     "cfg.seed, x = 1, 2\n")
    assert sorted(config_assignments(probe)) == ["probe.py:1 cfg.model.in_chans", "probe.py:3 setattr(getattr(cfg, 'data'), ...)",
                                                 "probe.py:4 cfg.seed"]


def test_help_and_the_package_import_need_neither_torch_nor_timm():
    """`hybridwrap --help` (and a command's --help) answers without loading torch or timm: they load on first use."""
    import subprocess
    import sys

    probe = ("import sys, runpy; sys.argv = ['hybridwrap'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('hybridwrap.cli', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('torch', 'timm', 'accelerate') if m in sys.modules)\n"
             "print('HEAVY', heavy, file=sys.stderr)")
    for args in (["--help"], ["train", "--help"], ["predict", "--help"], ["export", "--help"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        assert "HEAVY []" in done.stderr, (args, done.stderr[-500:])
        assert "usage: hybridwrap" in done.stdout
    import hybridwrap

    assert callable(hybridwrap.wrap) and hybridwrap.ConfigError  # the lazy names resolve
