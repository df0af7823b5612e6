"""Every environment variable config/settings.py reads is documented in README's tables and in .env.example.

The variables are found by parsing the settings module (no import, so no environment is needed):
the first argument of every ``env(...)``/``env.<cast>(...)`` call, of every settings helper that passes
its parameter on to one (``_positive_int("NAME", ...)``), and every ``os.environ``/``os.getenv`` read.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")
_ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.M)


def _is_env_call(call: ast.Call) -> bool:
    """env("X"), env.int("X"), environ.Env().str("X")."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "env"
    if isinstance(func, ast.Attribute):
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id == "env":
            return True
        return isinstance(owner, ast.Call) and isinstance(owner.func, ast.Attribute) and owner.func.attr == "Env"
    return False


def _is_os_environ(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute) and node.attr == "environ"
        and isinstance(node.value, ast.Name) and node.value.id == "os"
    )


def _is_os_read(call: ast.Call) -> bool:
    """os.environ.get("X"), os.getenv("X") (setdefault writes, it does not configure)."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "get" and _is_os_environ(func.value):
        return True
    return func.attr == "getenv" and isinstance(func.value, ast.Name) and func.value.id == "os"


def _constant(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def variables_read(source: str) -> set[str]:
    """The names of the environment variables a settings module reads.

    Raises ValueError on a read whose name cannot be known statically (so nothing slips past).
    """
    tree = ast.parse(source)
    # Settings helpers that read the variable named by one of their parameters: name -> parameter index.
    helpers: dict[str, int] = {}
    helper_params: dict[ast.FunctionDef, set[str]] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef):
            continue
        params = [a.arg for a in fn.args.args]
        helper_params[fn] = set(params)
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and (_is_env_call(node) or _is_os_read(node)) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Name) and first.id in params:
                    helpers[fn.name] = params.index(first.id)

    def forwarded(node: ast.Call) -> bool:
        first = node.args[0]
        return isinstance(first, ast.Name) and any(
            first.id in params and any(n is node for n in ast.walk(fn)) for fn, params in helper_params.items()
        )

    found: set[str] = set()
    for node in ast.walk(tree):
        name: str | None
        if isinstance(node, ast.Call) and (_is_env_call(node) or _is_os_read(node)):
            if not node.args:
                continue  # environ.Env() itself
            name = _constant(node.args[0])
            if name is None:
                if forwarded(node):
                    continue
                raise ValueError(f"line {node.lineno}: environment read with a name not known statically")
            found.add(name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers:
            index = helpers[node.func.id]
            name = _constant(node.args[index]) if len(node.args) > index else None
            if name is None:
                raise ValueError(f"line {node.lineno}: {node.func.id}() with a name not known statically")
            found.add(name)
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Load):
            name = _constant(node.slice)
            if name is None:
                raise ValueError(f"line {node.lineno}: os.environ[...] with a name not known statically")
            found.add(name)
    return found


def readme_table_variables(readme: str) -> set[str]:
    """Names in backticks in the first cell of README's table rows."""
    names: set[str] = set()
    for line in readme.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first_cell = line.split("|")[1]
            names.update(_NAME.findall(first_cell))
    return names


def env_example_variables(text: str) -> set[str]:
    """NAME=value lines of .env.example, commented out or not."""
    return set(_ENV_EXAMPLE_LINE.findall(text))


def undocumented(settings_source: str, readme: str, env_example: str) -> dict[str, list[str]]:
    """Variables read by the settings but missing from README's tables or from .env.example."""
    read = variables_read(settings_source)
    missing = {
        "README.md configuration tables": sorted(read - readme_table_variables(readme)),
        ".env.example": sorted(read - env_example_variables(env_example)),
    }
    return {where: names for where, names in missing.items() if names}


def _repository_texts() -> tuple[str, str, str]:
    return (
        (ROOT / "config" / "settings.py").read_text(),
        (ROOT / "README.md").read_text(),
        (ROOT / ".env.example").read_text(),
    )


def test_every_variable_read_by_the_settings_is_in_the_readme_and_env_example():
    missing = undocumented(*_repository_texts())
    assert not missing, "undocumented environment variables: " + "; ".join(
        f"{where}: {', '.join(names)}" for where, names in missing.items()
    )


def test_the_parser_finds_the_variables_the_settings_read():
    settings_source, _, _ = _repository_texts()
    read = variables_read(settings_source)
    # A plain read, a read through the _positive_int helper, a read nested in another read's default.
    assert {"DEBUG", "SCIM_AUTH_FAILURE_LIMIT", "AUDIT_PREPARED_STATEMENTS", "DEPROVISION_SWEEP_LIMIT"} <= read
    assert len(read) > 60


def test_an_undocumented_variable_is_named_in_the_failure():
    settings_source, readme, env_example = _repository_texts()
    source = settings_source + '\nNEW_KNOB = env.int("GATEHOUSE_NEW_KNOB", default=3)\n'
    assert undocumented(source, readme, env_example) == {
        "README.md configuration tables": ["GATEHOUSE_NEW_KNOB"],
        ".env.example": ["GATEHOUSE_NEW_KNOB"],
    }


def test_reads_through_helpers_and_os_environ_count_too():
    source = (
        "import os\n"
        "def _positive_int(name, default):\n"
        "    return env.int(name, default=default)\n"
        'A = _positive_int("VIA_HELPER", 1)\n'
        'B = os.environ["VIA_SUBSCRIPT"]\n'
        'C = os.environ.get("VIA_GET")\n'
        'D = os.getenv("VIA_GETENV")\n'
        'os.environ.setdefault("ONLY_WRITTEN", "x")\n'
    )
    assert variables_read(source) == {"VIA_HELPER", "VIA_SUBSCRIPT", "VIA_GET", "VIA_GETENV"}
    missing = undocumented(source, "| `VIA_HELPER` | 1 | x |\n", "VIA_SUBSCRIPT=\n# VIA_GET=\n")
    assert missing == {
        "README.md configuration tables": ["VIA_GET", "VIA_GETENV", "VIA_SUBSCRIPT"],
        ".env.example": ["VIA_GETENV", "VIA_HELPER"],
    }


def test_a_variable_name_the_parser_cannot_know_is_refused():
    with pytest.raises(ValueError, match="not known statically"):
        variables_read("NAME = 'X'\nVALUE = env.str(NAME)\n")
