"""Imports between biotune modules sit at the top of the module and point down the floors.

Every module under ``biotune/`` is parsed (``ast``, nothing is imported) and each ``import biotune...`` /
``from biotune... import ...`` is checked:

* at module top (``if TYPE_CHECKING:`` blocks included), the imported module's floor must not be above the
  importer's (:data:`FLOORS`);
* inside a function or class body, a biotune import is an error: the rule allows lazy imports only for heavy
  third-party libraries (:data:`HEAVY_LIBRARIES`), so a lazy import of a biotune module that imports one of them
  at its top (``biotune.train.engine``, the one door to deepspeed) counts as one and passes. The other exceptions
  are :data:`DISPATCH` (the ``biotune`` entry point) and :data:`ALLOWED_IN_FUNCTION`, files owned by other work
  in progress, to be shrunk to nothing.

Floors order modules; the packages must not form a circle either: in the graph whose nodes are the top-level
modules and packages (``biotune.config``, ``biotune.sources``, ``biotune.data``, ...), every import at module top
is an edge, and the graph must have no cycle (:func:`package_cycle`).

Two neighbours of the rule are checked here too: ``biotune --help`` imports no command module and no heavy library
(``biotune.cli`` imports the module of the command being run, and only it), and each tuple of allowed values that
``config.py`` validates a key against is declared there alone, beside its field.

Each checker is first run on a planted violation, so a checker that found nothing could not pass.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "biotune"

#: The floors, lowest first: a module may import from its own floor and the floors below it. A module's floor is
#: that of the longest prefix listed. The corpus catalogue (records, the registry and the readers) sits under the
#: config: it never reads a config, and config validation names unknown sources and splits with it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("biotune", "biotune.errors", "biotune.io", "biotune.names", "biotune.versions"),
    ("biotune.sources",),
    ("biotune.config_checks", "biotune.config"),
    ("biotune.data",),
    ("biotune.distributed", "biotune.train", "biotune.launch"),
    ("biotune.plan", "biotune.eval"),
    ("biotune.sweep",),
    ("biotune.testing", "biotune.demo", "biotune.cli"),
)

#: Third-party libraries whose import is slow or needs an accelerator stack: imported lazily where they are used.
HEAVY_LIBRARIES = frozenset(
    {"torch", "deepspeed", "transformers", "datasets", "wandb", "matplotlib", "peft", "vllm"}
)

#: The entry point: it imports the module of the subcommand being run, and only that one (``--help`` stays fast).
DISPATCH = frozenset({"biotune/cli.py"})

#: Files allowed to keep in-function biotune imports of light modules (none now; a new entry needs a reason).
ALLOWED_IN_FUNCTION: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Import:
    """One import of a biotune module: where it is, what it imports, and whether it runs inside a function."""

    file: str
    line: int
    importer: str
    target: str
    in_function: bool
    type_only: bool = False

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.importer} imports {self.target}"


def module_name(path: Path, root: Path) -> str:
    """``biotune/data/tasks/ner.py`` -> ``biotune.data.tasks.ner``; a package's ``__init__.py`` -> the package."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split("."))
    return (root.parent / rel).with_suffix(".py").is_file() or (root.parent / rel / "__init__.py").is_file()


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, root: Path) -> list[str]:
    """The biotune modules an import statement loads (``from biotune.x import y`` -> ``biotune.x.y`` when ``y``
    is a module, else ``biotune.x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "biotune"]
    base = node.module or ""
    if node.level:
        anchor = importer.split(".") if is_package else importer.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    if base.split(".")[0] != "biotune":
        return []
    found = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}", root) else base for a in node.names]
    return list(dict.fromkeys(found))


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith("TYPE_CHECKING")


def imports_of(path: Path, root: Path = PACKAGE) -> list[Import]:
    """Every biotune import in one file, with whether it sits inside a function or class body."""
    importer = module_name(path, root)
    rel = path.relative_to(root.parent).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, nested: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                for target in _targets(child, importer, path.name == "__init__.py", root):
                    found.append(Import(rel, child.lineno, importer, target, nested, type_only))
            inner = nested or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            )
            visit(child, inner, type_only or _is_type_checking(child))

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False, False)
    return found


def _top_level_libraries(path: Path) -> set[str]:
    """The third-party (and standard) top-level packages a module imports when it is imported."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                continue
            if _is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                out.update(a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.ImportFrom) and not child.level and child.module:
                out.add(child.module.split(".")[0])
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return out


def heavy_modules(root: Path = PACKAGE) -> set[str]:
    """Biotune modules whose import loads a :data:`HEAVY_LIBRARIES` library (directly or through a biotune module
    they import at their top): a lazy import of one of them is a lazy import of that library."""
    paths = sorted(root.rglob("*.py"))
    heavy = {module_name(p, root) for p in paths if _top_level_libraries(p) & HEAVY_LIBRARIES}
    top = [i for p in paths for i in imports_of(p, root) if not i.in_function and not i.type_only]
    grew = True
    while grew:
        grew = False
        for i in top:
            if i.target in heavy and i.importer not in heavy:
                heavy.add(i.importer)
                grew = True
    return heavy


def floor_of(module: str) -> int:
    """The floor of a module: that of the longest :data:`FLOORS` prefix it falls under."""
    best, floor = -1, -1
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, floor = len(prefix), level
    if floor < 0:
        raise ValueError(f"{module} is on no floor: add it to FLOORS")
    return floor


def upward(imports: list[Import]) -> list[Import]:
    """Imports at module top that point to a higher floor."""
    return [i for i in imports if not i.in_function and floor_of(i.target) > floor_of(i.importer)]


def in_function(
    imports: list[Import], heavy: set[str], allowed: frozenset[str] = ALLOWED_IN_FUNCTION
) -> list[Import]:
    """Biotune imports inside a function or class body, other than lazy imports of ``heavy`` modules, outside the
    entry point and the allow-list."""
    return [
        i for i in imports if i.in_function and i.target not in heavy and i.file not in DISPATCH | allowed
    ]


def all_imports(root: Path = PACKAGE) -> list[Import]:
    """The biotune imports of every module under ``root``."""
    return [i for path in sorted(root.rglob("*.py")) for i in imports_of(path, root)]


def package_of(module: str) -> str:
    """``biotune.data.tasks.ner`` -> ``biotune.data``; ``biotune.config`` -> itself: a top-level module or package."""
    return ".".join(module.split(".")[:2])


def package_cycle(imports: list[Import]) -> list[str]:
    """A circle of top-level modules/packages made by imports at module top (each node once, the first repeated at
    the end), or ``[]`` when the package graph is acyclic. The package root ``biotune`` itself is no node."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        if i.in_function or i.type_only:
            continue
        a, b = package_of(i.importer), package_of(i.target)
        if a != b and "biotune" not in (a, b):
            graph.setdefault(a, set()).add(b)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return list(err.args[1])
    return []


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """A throwaway ``biotune`` tree holding ``files`` (path under the package -> source)."""
    root = tmp_path / "biotune"
    for rel, text in {"__init__.py": "", "data/__init__.py": "", "sweep/__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_the_checker_sees_an_upward_import_at_module_top(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "config.py": "from biotune.data import build\n",
            "data/build.py": "from biotune import config\nfrom . import mixture\n",
            "data/mixture.py": "from biotune.sweep import collect as c\n",
            "sweep/collect.py": "",
        },
    )
    found = {(i.importer, i.target) for i in upward(all_imports(root))}
    assert found == {
        ("biotune.config", "biotune.data.build"),
        ("biotune.data.mixture", "biotune.sweep.collect"),
    }


def test_the_checker_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "config.py": "",
            "data/build.py": "def f():\n    from biotune import config\n\n\nclass A:\n    import biotune.io\n",
            "io.py": "",
            "sweep/collect.py": "def f():\n    from biotune.sweep import plots\n    from biotune.data import loader\n",
            "sweep/plots.py": "from biotune.sweep import draw\n",
            "sweep/draw.py": "import matplotlib.pyplot\n",
            "data/loader.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n",
        },
    )
    heavy = heavy_modules(root)
    assert heavy == {"biotune.sweep.plots", "biotune.sweep.draw"}
    found = in_function(all_imports(root), heavy, allowed=frozenset())
    assert [(i.file, i.line, i.target) for i in found] == [
        ("biotune/data/build.py", 2, "biotune.config"),
        ("biotune/data/build.py", 6, "biotune.io"),
        ("biotune/sweep/collect.py", 3, "biotune.data.loader"),
    ]
    assert len(in_function(all_imports(root), heavy, allowed=frozenset({"biotune/data/build.py"}))) == 1


def test_the_checker_sees_a_circle_between_packages(tmp_path: Path) -> None:
    """The circle that floors alone allowed: a module low in one package and a high one in another importing
    each other's package (the config read the catalogue inside ``data/`` while ``data/`` read the config)."""
    root = _package(
        tmp_path,
        {
            "config.py": "from biotune.data.sources import SOURCES\n",
            "data/sources.py": "from biotune import errors\n",
            "data/build.py": "from biotune import config\n",
            "errors.py": "",
        },
    )
    cycle = package_cycle(all_imports(root))
    assert set(cycle) == {"biotune.config", "biotune.data"} and cycle[0] == cycle[-1]
    root2 = _package(tmp_path / "fixed", {"config.py": "from biotune import sources\n", "sources.py": ""})
    assert package_cycle(all_imports(root2)) == []


def test_no_circle_between_packages() -> None:
    cycle = package_cycle(all_imports())
    assert not cycle, "top-level modules/packages import each other in a circle: " + " -> ".join(cycle)


def test_every_module_is_on_a_floor() -> None:
    modules = {module_name(p, PACKAGE) for p in PACKAGE.rglob("*.py")}
    for module in sorted(modules):
        floor_of(module)  # raises for a module outside FLOORS


def test_no_biotune_import_points_up() -> None:
    bad = upward(all_imports())
    assert not bad, (
        "imports that point up the floors (move the code to the floor it belongs on):\n"
        + "\n".join(map(str, bad))
    )


def test_biotune_imports_sit_at_module_top() -> None:
    bad = in_function(all_imports(), heavy_modules())
    assert not bad, "biotune imports inside functions (move them to the module top):\n" + "\n".join(
        map(str, bad)
    )


def test_the_allow_list_holds_only_files_that_need_it() -> None:
    """An entry whose file has no in-function import left is removed, so the list only shrinks (it is empty now:
    every biotune module imports biotune at its top, but for heavy modules and the CLI dispatch)."""
    left = {i.file for i in in_function(all_imports(), heavy_modules(), allowed=frozenset())}
    stale = sorted(ALLOWED_IN_FUNCTION - left)
    assert not stale, f"remove from ALLOWED_IN_FUNCTION: {stale}"


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    """``biotune --help`` lists every command from the table in ``biotune.cli``; it imports none of the command
    modules (the demo's would bring the sweep's scipy and matplotlib), nor any heavy library."""
    watched = sorted({*HEAVY_LIBRARIES, "scipy", "sklearn"})
    code = (
        "import sys, contextlib, io, biotune.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    biotune.cli.main(['--help'])\n"
        f"print(sorted(m for m in {watched!r} if m in sys.modules))\n"
        "print(sorted(m for m in biotune.cli.COMMAND_MODULES if m in sys.modules))\n"
        "print(all(name in out.getvalue() for name in biotune.cli.COMMANDS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["[]", "[]", "True"], out


def test_each_command_is_listed_with_the_help_line_its_module_registers() -> None:
    from biotune.cli import COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == {name: help_line for name, (_, help_line) in COMMANDS.items()}


def choice_definitions(root: Path = PACKAGE) -> dict[str, list[str]]:
    """Each tuple of allowed values that ``config.py`` validates a key against (``check_choice(p, key, value,
    NAME)``) -> every module that assigns ``NAME`` at its top: the config alone should."""
    config_tree = ast.parse((root / "config.py").read_text(encoding="utf-8"))
    names = {
        call.args[3].id
        for call in ast.walk(config_tree)
        if isinstance(call, ast.Call)
        and getattr(call.func, "id", "") == "check_choice"
        and len(call.args) == 4
        and isinstance(call.args[3], ast.Name)
    }
    owners: dict[str, list[str]] = {name: [] for name in sorted(names)}
    for path in sorted(root.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id in owners:
                        owners[name.id].append(path.relative_to(root.parent).as_posix())
    return owners


def test_the_checker_sees_a_choice_declared_twice(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "config.py": 'MODES: tuple[str, ...] = ("a", "b")\n\n\ndef v(p, c):\n    check_choice(p, "k", c.k, MODES)\n',
            "data/build.py": 'MODES = ("a", "b")\n',
        },
    )
    assert choice_definitions(root) == {"MODES": ["biotune/config.py", "biotune/data/build.py"]}


def test_each_choice_is_declared_beside_its_config_field_only() -> None:
    owners = choice_definitions()
    assert len(owners) >= 8, (
        owners
    )  # dtype, attention, schedule, template, truncation, leakage, NER format, ...
    assert {name: files for name, files in owners.items() if files != ["biotune/config.py"]} == {}


def test_running_a_command_imports_its_module_alone() -> None:
    code = (
        "import sys, contextlib, io, biotune.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    biotune.cli.main(['-v', 'plan', '--help'])\n"
        "print(sorted(m for m in biotune.cli.COMMAND_MODULES if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['biotune.plan']"
