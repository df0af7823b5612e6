"""Every audit action the code can record is in docs/audit-events.md, and the catalogue lists no other.

The actions are found by parsing the app packages (no import): every call to ``record_event`` or
``record_decision``, and to every function that passes one of its own parameters on to them as the
action (found here, not listed: ``_team_member_event``, ``_record_account_event``,
``membership_record_login``); a call that leaves such a helper's action out records its default.
An action is resolved from a string literal, a conditional expression (``"a" if c else "b"``), a
module-level string constant, or a lookup in a module-level dict of string constants (every value:
``ALLOWED_EVENT[action]``). A call site whose action cannot be resolved that way must be listed in
UNRESOLVED with the actions it can produce; otherwise the test fails naming the site.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
APPS = ("config", "workspaces", "saml", "scim", "audit")
DOC = ROOT / "docs" / "audit-events.md"

# The functions that write an event; the action is their ``action`` argument.
RECORDERS = ("record_event", "record_decision")

# Call sites the resolver cannot follow, as "path:function" -> the actions they can record.
UNRESOLVED: dict[str, frozenset[str]] = {}

_ACTION = re.compile(r"`([a-z0-9_]+\.[a-z0-9_]+)`")

Source = tuple[str, ast.Module]
Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class Recorder:
    """A function that records an event whose action is one of its parameters."""

    param: str
    position: int | None  # index among the positional parameters; None when keyword-only
    default: ast.expr | None = None


@dataclass
class Found:
    actions: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


def app_sources(root: Path = ROOT) -> list[Source]:
    """The parsed modules of the app packages (migrations hold no audit calls)."""
    sources: list[Source] = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            sources.append((str(path.relative_to(root)), ast.parse(path.read_text(), str(path))))
    return sources


def _constants(sources: Iterable[Source]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Module-level ``NAME = "x"`` and ``NAME = {key: "x", ...}`` of every module, by name.

    Keyed by bare name (imports are not followed); two modules defining one name contribute
    the union of their values, which can only add actions to check.
    """
    strings: dict[str, set[str]] = {}
    dicts: dict[str, set[str]] = {}
    for _, tree in sources:
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                strings.setdefault(target.id, set()).add(value.value)
            elif isinstance(value, ast.Dict):
                values = [
                    v.value for v in value.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
                ]
                if values and len(values) == len(value.values):
                    dicts.setdefault(target.id, set()).update(values)
    return strings, dicts


def _resolve(
    node: ast.expr, strings: Mapping[str, set[str]], dicts: Mapping[str, set[str]]
) -> set[str] | None:
    """The strings ``node`` can evaluate to, or None when that is not known statically."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _resolve(node.body, strings, dicts), _resolve(node.orelse, strings, dicts)
        return body | orelse if body is not None and orelse is not None else None
    if isinstance(node, ast.Name) and node.id in strings:
        return set(strings[node.id])
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in dicts:
        return set(dicts[node.value.id])
    return None


def _called_name(call: ast.Call) -> str | None:
    """``f(...)`` and ``module.f(...)`` both name ``f``."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _calls(tree: ast.Module) -> Iterator[tuple[Function | None, ast.Call]]:
    """Every call in the module with its innermost enclosing function (None at module level)."""

    def walk(node: ast.AST, fn: Function | None) -> Iterator[tuple[Function | None, ast.Call]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, Function) else fn
            if isinstance(child, ast.Call):
                yield inner, child
            yield from walk(child, inner)

    yield from walk(tree, None)


def _action_argument(call: ast.Call, recorder: Recorder) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == recorder.param:
            return keyword.value
    if recorder.position is not None and len(call.args) > recorder.position:
        return call.args[recorder.position]
    return None


def _parameters(fn: Function) -> list[ast.arg]:
    return [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]


def _as_recorder(fn: Function, param: str) -> Recorder:
    positional = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
    with_default = positional[len(positional) - len(fn.args.defaults):]
    defaults: dict[str, ast.expr] = dict(zip(with_default, fn.args.defaults, strict=True))
    keyword_only = zip(fn.args.kwonlyargs, fn.args.kw_defaults, strict=True)
    defaults.update({a.arg: d for a, d in keyword_only if d is not None})
    position = positional.index(param) if param in positional else None
    return Recorder(param=param, position=position, default=defaults.get(param))


def _passes_through(fn: Function | None, argument: ast.expr | None) -> str | None:
    """The enclosing function's parameter that ``argument`` is, if it is one."""
    if fn is None or not isinstance(argument, ast.Name):
        return None
    return argument.id if argument.id in {a.arg for a in _parameters(fn)} else None


def recorded_actions(sources: list[Source], unresolved: Mapping[str, frozenset[str]] = UNRESOLVED) -> Found:
    """Every action the sources can record, and the call sites whose action is not known statically."""
    strings, dicts = _constants(sources)
    recorders: dict[str, Recorder] = {name: Recorder(param="action", position=None) for name in RECORDERS}
    # Helpers that pass a parameter on as the action are recorders too (to a fixed point: helpers of helpers).
    while True:
        added = False
        for _, tree in sources:
            for fn, call in _calls(tree):
                name = _called_name(call)
                if fn is None or name not in recorders or fn.name in recorders:
                    continue
                param = _passes_through(fn, _action_argument(call, recorders[name]))
                if param is not None:
                    recorders[fn.name] = _as_recorder(fn, param)
                    added = True
        if not added:
            break

    found = Found()
    for path, tree in sources:
        for fn, call in _calls(tree):
            name = _called_name(call)
            if name not in recorders:
                continue
            recorder = recorders[name]
            argument = _action_argument(call, recorder)
            if argument is None:
                argument = recorder.default
            forwarded = recorders[fn.name].param if fn is not None and fn.name in recorders else None
            if forwarded is not None and _passes_through(fn, argument) == forwarded:
                continue  # a helper forwarding its caller's action: counted at its callers
            site = f"{path}:{fn.name if fn else '<module>'}"
            actions = _resolve(argument, strings, dicts) if argument is not None else None
            if actions is None and site in unresolved:
                actions = set(unresolved[site])
            if actions is None:
                found.unresolved.append(
                    f"{site} (line {call.lineno}): {name}() with an action not known statically"
                )
            else:
                found.actions |= actions
    return found


def documented_actions(doc: str) -> set[str]:
    """Actions in backticks in the first cell of the tables under "## Actions"."""
    section = re.split(r"^## Actions$", doc, maxsplit=1, flags=re.M)[1].split("\n## ", 1)[0]
    actions: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            actions.update(_ACTION.findall(line.split("|")[1]))
    return actions


def assert_documented(
    sources: list[Source], doc: str, unresolved: Mapping[str, frozenset[str]] = UNRESOLVED
) -> None:
    found = recorded_actions(sources, unresolved)
    assert not found.unresolved, "list these call sites in UNRESOLVED with their actions:\n" + "\n".join(
        found.unresolved
    )
    missing = sorted(found.actions - documented_actions(doc))
    assert not missing, f"recorded but missing from docs/audit-events.md: {', '.join(missing)}."


def test_every_recorded_action_is_documented() -> None:
    assert_documented(app_sources(), DOC.read_text())


def test_every_documented_action_is_recorded() -> None:
    recorded = recorded_actions(app_sources()).actions
    extra = sorted(documented_actions(DOC.read_text()) - recorded)
    assert not extra, f"in docs/audit-events.md but recorded nowhere: {', '.join(extra)}"


def test_the_known_actions_are_found() -> None:
    """The resolver reaches each kind of call site (so an empty result cannot pass for a documented one)."""
    actions = recorded_actions(app_sources()).actions
    assert {
        "member.created",  # literal
        "scim.enabled", "scim.disabled",  # conditional expression
        "package.pulled", "package.pushed", "package.deleted", "package.denied",  # dict lookup, constant
        "team.member_added", "2fa.enabled",  # through a helper
        "auth.login_succeeded",  # a helper's default
        "sso.login_succeeded",  # a helper's argument
    } <= actions


SYNTHETIC = '''
EVENTS = {"a": "widget.created"}
GONE = "widget.deleted"

def _widget_event(actor, action, widget):
    record_event(actor=actor, action=action, target_id=widget)

def widget_create(actor, widget, loud):
    _widget_event(actor, "widget.exploded" if loud else EVENTS[widget], widget)
    record_decision(actor=actor, action=GONE)
'''
SYNTHETIC_DOC = """## Actions
| action | target | details |
|---|---|---|
| `widget.created`, `widget.deleted` | widget | — |
"""


def test_an_undocumented_action_fails_the_check() -> None:
    sources = [("widgets/services.py", ast.parse(SYNTHETIC))]
    assert recorded_actions(sources).actions == {"widget.created", "widget.deleted", "widget.exploded"}
    with pytest.raises(AssertionError, match=r"missing from docs/audit-events\.md: widget\.exploded\."):
        assert_documented(sources, SYNTHETIC_DOC)


def test_an_action_not_known_statically_fails_unless_listed() -> None:
    source = "def widget_touch(actor, verb):\n    record_event(actor=actor, action=f'widget.{verb}')\n"
    sources = [("widgets/services.py", ast.parse(source))]
    with pytest.raises(AssertionError, match=r"widgets/services\.py:widget_touch \(line 2\)"):
        assert_documented(sources, SYNTHETIC_DOC)
    listed = {"widgets/services.py:widget_touch": frozenset({"widget.created"})}
    assert_documented(sources, SYNTHETIC_DOC, listed)


def test_the_audit_page_catalogue_is_the_documented_list() -> None:
    """audit.catalogue.ACTIONS (the action filter's suggestions) lists exactly the documented actions."""
    from audit.catalogue import ACTIONS

    documented = documented_actions(DOC.read_text())
    assert len(ACTIONS) == len(set(ACTIONS)), "audit/catalogue.py lists an action twice"
    assert not documented - set(ACTIONS), f"add to audit/catalogue.py: {', '.join(sorted(documented - set(ACTIONS)))}"
    assert not set(ACTIONS) - documented, f"not documented: {', '.join(sorted(set(ACTIONS) - documented))}"
