"""The import graph of our apps has no cycles and no upward edges.

Layers (docs/architecture.md): ``audit`` <- ``workspaces`` <- ``saml``, ``scim``; ``config`` wires them together.
Every module of every app (packages and subpackages, migrations included) is read with ``ast``, never
imported. ``if TYPE_CHECKING:`` blocks are skipped (annotations only). Imports inside functions count:
an import moved into a function to dodge a cycle at start-up is still a cycle between the modules (the
report marks such edges "deferred"), and ``audit`` importing ``workspaces`` late still imports it.
``import a.b`` is an edge to ``a.b``; ``from a import b`` is an edge to ``a.b`` when that is a module,
else to ``a``.

The last tests feed the same checks a small synthetic tree with a cycle and an upward import, so
this file is known to fail when one is added.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "workspaces", "saml", "scim", "audit")

# app -> apps it must not import (the allowed direction is audit <- workspaces <- saml, scim).
FORBIDDEN: dict[str, frozenset[str]] = {
    "audit": frozenset({"workspaces", "saml", "scim"}),
    "workspaces": frozenset({"saml", "scim"}),
}
# config's modules that wire the apps together (URLs, the Celery app, settings, entry points) may import any
# app; config's other modules (db, cache, checks) are helpers below every app and import none.
CONFIG_WIRING = frozenset({
    "config", "config.urls", "config.celery", "config.settings", "config.settings_test", "config.wsgi", "config.asgi",
})
# No app imports these (settings come through django.conf.settings); the Celery app (config.celery) is shared.
NOT_FOR_APPS = CONFIG_WIRING - {"config", "config.celery"}

Graph = dict[str, set[str]]


# ----------------------------------------------------------------------------- reading the tree


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``packages`` under ``root``."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(body: list[ast.stmt], *, deferred: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports of a module, skipping ``if TYPE_CHECKING:`` blocks; those inside functions only if ``deferred``."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if deferred:
                yield from _imports(node.body, deferred=deferred)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse, deferred=deferred)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for child in getattr(node, field, None) or ():
                    if isinstance(child, ast.ExceptHandler | ast.match_case):
                        yield from _imports(child.body, deferred=deferred)
                    elif isinstance(child, ast.stmt):
                        yield from _imports([child], deferred=deferred)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:  # import a.b.c of a non-module c: the nearest module
                name = name.rpartition(".")[0]
            if name:
                yield name
        return
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    for alias in node.names:
        if f"{base}.{alias.name}" in known:
            yield f"{base}.{alias.name}"
        elif base in known:
            yield base


def import_graph(root: Path, packages: Iterable[str], *, deferred: bool = True) -> Graph:
    """Module -> the modules of ``packages`` it imports; ``deferred``: imports inside functions count too."""
    files = modules_under(root, packages)
    known = set(files)
    graph: Graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = {
            target for node in _imports(tree.body, deferred=deferred)
            for target in _targets(node, module, is_package, known) if target != module
        }
    return graph


# ----------------------------------------------------------------------------- the checks


def cycles(graph: Graph) -> list[list[str]]:
    """The shortest cycle through each module that is on one, as a path a -> ... -> a (each cycle once)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(start: str) -> None:  # Tarjan, iteratively (no recursion limit on long chains)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    found: set[tuple[str, ...]] = set()
    for component in components:
        for start in component:
            cycle = _shortest_cycle(graph, component, start)[:-1]
            at = cycle.index(min(cycle))  # the same cycle found from another of its modules: one rotation
            rotated = (*cycle[at:], *cycle[:at])
            found.add((*rotated, rotated[0]))
    return sorted(list(cycle) for cycle in found)


def _shortest_cycle(graph: Graph, component: set[str], start: str) -> list[str]:
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child in component and child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {component}")  # pragma: no cover


def _app(module: str) -> str:
    return module.partition(".")[0]


def upward_imports(graph: Graph) -> list[str]:
    """Every edge against the layers, as ``importer -> imported (rule)``."""
    found = []
    for module in sorted(graph):
        app = _app(module)
        for target in sorted(graph[module]):
            other = _app(target)
            if other in FORBIDDEN.get(app, ()):
                found.append(f"{module} -> {target} ({app} must not import {other})")
            elif app == "config" and other != "config" and module not in CONFIG_WIRING:
                found.append(f"{module} -> {target} (only config's wiring modules import the apps)")
            elif app != "config" and target in NOT_FOR_APPS:
                found.append(f"{module} -> {target} (apps do not import config's wiring)")
    return found


def _report(title: str, lines: list[str]) -> str:
    text = f"{title} ({len(lines)}):\n" + "\n".join(f"  {line}" for line in lines)
    print(text)
    return text


# ----------------------------------------------------------------------------- our tree


def test_the_walker_reads_every_app_and_its_subpackages():
    graph = import_graph(ROOT, APPS)
    assert {"audit.record", "workspaces.api.views", "scim.urls", "saml.services", "config.urls"} <= set(graph)
    assert "workspaces.models" in graph["workspaces.api.views"]


def _path(cycle: list[str], eager: Graph) -> str:
    """``a -> b -(deferred)-> a``: which edges of the cycle are imports inside functions."""
    text = cycle[0]
    for importer, imported in zip(cycle, cycle[1:], strict=False):
        text += f" -> {imported}" if imported in eager.get(importer, ()) else f" -(deferred)-> {imported}"
    return text


def test_no_import_cycles_between_our_modules():
    found = cycles(import_graph(ROOT, APPS))
    eager = import_graph(ROOT, APPS, deferred=False)
    assert not found, _report("Import cycles", [_path(cycle, eager) for cycle in found])


def test_no_upward_imports_between_our_apps():
    found = upward_imports(import_graph(ROOT, APPS))
    assert not found, _report("Imports against the layers (audit <- workspaces <- saml, scim)", found)


# ----------------------------------------------------------------------------- the checks can fail


def _write(root: Path, files: dict[str, str]) -> None:
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")


def test_a_synthetic_tree_with_a_cycle_and_an_upward_import_is_reported(tmp_path):
    _write(tmp_path, {
        "audit/__init__.py": "",
        "audit/record.py": "from workspaces.models import Membership\n",  # upward
        "workspaces/__init__.py": "",
        "workspaces/models.py": "from . import roles\n",
        "workspaces/roles.py": "from workspaces.models import Membership\n",  # models <-> roles
        "workspaces/access.py": "from .services import grant\n",
        "workspaces/services/__init__.py": "from .teams import team_create\n",
        "workspaces/services/teams.py": "from ..access import check\n",  # access -> services -> teams -> access
        "saml/__init__.py": "",
        "saml/views.py": "import workspaces.models\nfrom audit import record\n",  # downward: allowed
    })
    graph = import_graph(tmp_path, ("audit", "workspaces", "saml"))
    assert graph["workspaces.services.teams"] == {"workspaces.access"}
    assert graph["saml.views"] == {"workspaces.models", "audit.record"}
    assert cycles(graph) == [
        ["workspaces.access", "workspaces.services", "workspaces.services.teams", "workspaces.access"],
        ["workspaces.models", "workspaces.roles", "workspaces.models"],
    ]
    assert upward_imports(graph) == ["audit.record -> workspaces.models (audit must not import workspaces)"]


def test_workspaces_importing_saml_or_scim_and_config_helpers_importing_apps_are_reported():
    graph: Graph = {
        "workspaces.views": {"scim.models", "audit.record"},
        "scim.models": set(),
        "audit.record": {"config.db"},
        "config.db": {"workspaces.models"},
        "config.urls": {"workspaces.views"},
        "workspaces.models": {"config.urls"},
        "workspaces.tasks": {"config.celery"},
    }
    assert upward_imports(graph) == [
        "config.db -> workspaces.models (only config's wiring modules import the apps)",
        "workspaces.models -> config.urls (apps do not import config's wiring)",
        "workspaces.views -> scim.models (workspaces must not import scim)",
    ]


def test_type_checking_imports_do_not_count_and_imports_in_functions_do(tmp_path):
    _write(tmp_path, {
        "audit/__init__.py": "",
        "audit/record.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from workspaces.models import Membership\n"
            "def actor():\n    from workspaces import roles\n"
        ),
        "workspaces/__init__.py": "",
        "workspaces/models.py": "",
        "workspaces/roles.py": "",
    })
    assert import_graph(tmp_path, ("audit", "workspaces"))["audit.record"] == {"workspaces.roles"}
    assert import_graph(tmp_path, ("audit", "workspaces"), deferred=False)["audit.record"] == set()


def test_a_cycle_closed_by_an_import_inside_a_function_is_still_a_cycle(tmp_path):
    _write(tmp_path, {
        "workspaces/__init__.py": "",
        "workspaces/access.py": "from .services import actor_for\n",
        "workspaces/services.py": "def login():\n    from .access import SESSION_KEY\n",
    })
    graph = import_graph(tmp_path, ("workspaces",))
    assert cycles(graph) == [["workspaces.access", "workspaces.services", "workspaces.access"]]
    eager = import_graph(tmp_path, ("workspaces",), deferred=False)
    assert _path(cycles(graph)[0], eager) == "workspaces.access -> workspaces.services -(deferred)-> workspaces.access"
