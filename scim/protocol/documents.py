"""SCIM request documents: validate and normalise bodies and PATCH operations against our schemas.

Attribute names are case-insensitive (RFC 7643 §2.1) and are normalised to their schema case.
Types are checked against the schema definitions that ``/Schemas`` serves; Entra's booleans
as strings (``"False"``) are coerced. Lenient on what does not apply, strict on what is used: an attribute,
sub-attribute or extension schema Gatehouse does not know (an extra attribute mapped in Okta, a custom Entra
extension, ``addresses[].primary``) and ``password`` are ignored, never stored, and named in the provisioning
log ("ignored: ..."); every attribute Gatehouse reads is validated and refused with a 400.

PATCH operations (RFC 7644 §3.5.2) are applied to a copy of the resource's document; paths
are parsed by scim2-filter-parser, and value filters (``emails[type eq "work"]``) are evaluated
on the parsed tree against the few values of one attribute.
"""

from __future__ import annotations

import contextvars
import copy
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scim2_filter_parser import ast as scim2ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser

from ..errors import ScimError, bad_request
from ..schemas import CORE_USER, USER_ATTRS, USER_EXTENSIONS

# Read-only or envelope attributes a client may echo back; RFC 7644 §3.5.1 says to ignore them.
IGNORED_USER_KEYS = {"schemas", "id", "meta", "groups"}
# Never stored: SCIM-created accounts have no password (Okta's "sync password" must stay off).
WRITE_ONLY_DROPPED = {"password"}
LIST_OF_NAMES = {"product_environments", "allowedenvironments"}


# Names ignored by the current request (for the provisioning log); None outside a SCIM request.
_ignored: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("scim_ignored", default=None)
_MAX_IGNORED = 20


@contextmanager
def collecting_ignored() -> Iterator[list[str]]:
    """Collect the names this request's documents ignored (``scim.protocol.router`` wraps each request)."""
    names: list[str] = []
    token = _ignored.set(names)
    try:
        yield names
    finally:
        _ignored.reset(token)


def ignored_attributes() -> list[str]:
    """The names the current request ignored so far, in order, without repeats."""
    return list(_ignored.get() or [])


def ignore_attribute(name: str) -> None:
    """Name something the current request sent and Gatehouse left unapplied (shown in the provisioning log)."""
    _ignore(name)


def _ignore(name: str) -> None:
    names = _ignored.get()
    name = _CONTROL.sub("", str(name))[:80]
    if names is not None and name not in names and len(names) < _MAX_IGNORED:
        names.append(name)


class UnknownTarget(ScimError):
    """A PATCH path naming an attribute or schema Gatehouse does not know: ignored by add, replace and remove."""


# C0 controls except tab, line feed and carriage return (an address may span lines), and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _type_error(path: str, expected: str, value: Any) -> ScimError:
    return bad_request(f"{path!r} must be {expected}, not {type(value).__name__}.", "invalidValue")


def coerce_value(value: Any, attr: dict[str, Any], path: str, *, single: bool = False) -> Any:
    """Check ``value`` against one schema attribute; return it normalised. ``None`` means unassign."""
    if value is None:
        return None
    if attr.get("multiValued") and not single:
        if attr["name"].lower() in LIST_OF_NAMES and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, dict) and attr["type"] == "complex":
            value = [value]  # OneLogin and some Okta mappings send one object instead of a list
        if not isinstance(value, list):
            raise _type_error(path, "a list", value)
        return [coerce_value(v, attr, path, single=True) for v in value if v is not None]
    kind = attr["type"]
    if kind == "complex":
        if isinstance(value, str) and attr["name"] == "manager":
            value = {"value": value}  # Entra sends the manager's id as a bare string
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        subs = {s["name"].lower(): s for s in attr.get("subAttributes", [])}
        out = {}
        for key, sub_value in value.items():
            sub = subs.get(str(key).lower())
            if sub is None:
                _ignore(f"{path}.{key}")
                continue
            coerced = coerce_value(sub_value, sub, f"{path}.{sub['name']}")
            if coerced is not None:
                out[sub["name"]] = coerced
        return out
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # Entra ID sends "True"/"False"
        raise _type_error(path, "a boolean", value)
    if kind in ("string", "reference", "dateTime", "binary"):
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
        if len(value) > 2048:
            raise bad_request(f"{path!r} is longer than 2048 characters.")
        if _CONTROL.search(value):
            raise bad_request(f"{path!r} contains a control character; only tab and line breaks are allowed.",
                              "invalidValue")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(path, "an integer", value)
        return value
    return value


def _split_urn_key(key: str) -> tuple[str, str] | None:
    """``urn:...:enterprise:2.0:User:department`` -> (extension URN, "department")."""
    lower = key.lower()
    for urn_lower, (urn, _attrs) in USER_EXTENSIONS.items():
        if lower.startswith(urn_lower + ":"):
            return urn, key[len(urn) + 1:]
    return None


def normalize_user(body: dict[str, Any]) -> dict[str, Any]:
    """A User body (POST/PUT) as a normalised document; raises 400 for unknown attributes or wrong types."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "invalidSyntax")
    doc: dict[str, Any] = {}
    for key, value in body.items():
        if not isinstance(key, str):
            raise bad_request("Attribute names must be strings.", "invalidSyntax")
        lower = key.lower()
        if lower in IGNORED_USER_KEYS:
            continue
        if lower in WRITE_ONLY_DROPPED:
            _ignore(key)
            continue
        if lower in USER_EXTENSIONS:
            urn, attrs = USER_EXTENSIONS[lower]
            if value is None:
                continue
            if not isinstance(value, dict):
                raise _type_error(urn, "an object", value)
            ext = doc.setdefault(urn, {})
            for sub_key, sub_value in value.items():
                if str(sub_key).lower() == "schemas":
                    continue  # some clients repeat the extension's URN inside its value
                attr = attrs.get(str(sub_key).lower())
                if attr is None:
                    _ignore(f"{urn}:{sub_key}")
                    continue
                coerced = coerce_value(sub_value, attr, f"{urn}:{attr['name']}")
                if coerced is not None:
                    ext[attr["name"]] = coerced
            continue
        split = _split_urn_key(key)
        if split is not None:
            urn, name = split
            attr = USER_EXTENSIONS[urn.lower()][1].get(name.lower())
            if attr is None:
                _ignore(key)
                continue
            coerced = coerce_value(value, attr, key)
            if coerced is not None:
                doc.setdefault(urn, {})[attr["name"]] = coerced
            continue
        if lower.startswith(CORE_USER.lower() + ":"):
            lower = lower[len(CORE_USER) + 1:]
        attr = USER_ATTRS.get(lower)
        if attr is None:
            # An extra core attribute, or an extension schema Gatehouse does not know (whole or one attribute).
            _ignore(key)
            continue
        if attr["name"] in WRITE_ONLY_DROPPED:
            _ignore(key)
            continue
        coerced = coerce_value(value, attr, attr["name"])
        if coerced is not None:
            doc[attr["name"]] = coerced
    return doc


# ----------------------------------------------------------------------------- paths


class Path:
    """A parsed PATCH path: optional extension URN, attribute, optional value filter and sub-attribute."""

    def __init__(self, urn: str | None, attr: str, sub: str | None, value_filter: Any | None) -> None:
        self.urn = urn
        self.attr = attr
        self.sub = sub
        self.value_filter = value_filter

    def __repr__(self) -> str:
        return f"Path({self.urn!r}, {self.attr!r}, {self.sub!r}, filter={self.value_filter is not None})"


def parse_path(text: str) -> Path:
    """Parse a PATCH ``path`` with scim2-filter-parser (as django-scim2's ``split_path`` does)."""
    if not isinstance(text, str) or not text.strip() or len(text) > 1000:
        raise bad_request("The PATCH path is empty, too long or not a string.", "invalidPath")
    text = text.strip()
    lower = text.lower()
    # A bare extension URN (the whole extension object) is a path the filter grammar cannot express.
    for urn_lower, (urn, _attrs) in USER_EXTENSIONS.items():
        if lower == urn_lower:
            return Path(urn, "", None, None)
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text + ' eq ""'))
    except Exception as exc:
        raise bad_request(f"The PATCH path {text[:100]!r} could not be parsed.", "invalidPath") from exc
    if not isinstance(tree, scim2ast.Filter) or not isinstance(tree.expr, scim2ast.AttrExpr):
        raise bad_request(f"The PATCH path {text[:100]!r} could not be parsed.", "invalidPath")
    attr_path = tree.expr.attr_path
    if isinstance(attr_path.attr_name, scim2ast.Filter):
        value_path = attr_path.attr_name
        namespace = value_path.namespace
        sub = namespace.sub_attr.value if namespace.sub_attr else None
        return Path(_urn_of(namespace.uri), namespace.attr_name, sub, value_path.expr)
    sub = attr_path.sub_attr.value if attr_path.sub_attr else None
    return Path(_urn_of(attr_path.uri), attr_path.attr_name, sub, None)


def _urn_of(uri: str | None) -> str | None:
    if not uri or uri.lower() == CORE_USER.lower():
        return None
    known = USER_EXTENSIONS.get(uri.lower())
    if known is None:
        raise UnknownTarget(400, f"Unknown schema {uri!r} in the PATCH path.", "invalidPath")
    urn: str = known[0]
    return urn


def matches(expr: Any, item: dict[str, Any]) -> bool:
    """Evaluate a parsed value filter (``type eq "work"``) against one value of a multi-valued attribute."""
    if isinstance(expr, scim2ast.Filter):
        result = matches(expr.expr, item)
        return not result if expr.negated else result
    if isinstance(expr, scim2ast.LogExpr):
        left, right = matches(expr.expr1, item), matches(expr.expr2, item)
        return (left and right) if expr.op.lower() == "and" else (left or right)
    if isinstance(expr, scim2ast.AttrExpr):
        name = str(expr.attr_path.attr_name).lower()
        actual = next((v for k, v in item.items() if k.lower() == name), None)
        op = expr.value.lower()
        if op == "pr":
            return actual not in (None, "", [], {})
        wanted = expr.comp_value.value if expr.comp_value is not None else None
        if isinstance(actual, bool):
            actual = "true" if actual else "false"
        a, w = str(actual if actual is not None else "").lower(), str(wanted or "").lower()
        return {
            "eq": a == w, "ne": a != w, "co": w in a, "sw": a.startswith(w), "ew": a.endswith(w),
            "gt": a > w, "ge": a >= w, "lt": a < w, "le": a <= w,
        }.get(op, False)
    raise bad_request("Unsupported value filter.", "invalidFilter")


def simple_equalities(expr: Any) -> dict[str, str] | None:
    """``type eq "work"`` (or several joined by ``and``) as a dict, to build a new value; else None."""
    if isinstance(expr, scim2ast.Filter) and not expr.negated:
        return simple_equalities(expr.expr)
    if isinstance(expr, scim2ast.LogExpr) and expr.op.lower() == "and":
        left, right = simple_equalities(expr.expr1), simple_equalities(expr.expr2)
        return {**left, **right} if left is not None and right is not None else None
    if isinstance(expr, scim2ast.AttrExpr) and expr.value.lower() == "eq" and expr.comp_value is not None:
        return {str(expr.attr_path.attr_name): expr.comp_value.value}
    return None


# ----------------------------------------------------------------------------- PATCH on a User document


def _container(doc: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    if path.urn:
        return doc.setdefault(path.urn, {}), USER_EXTENSIONS[path.urn.lower()][1]
    return doc, USER_ATTRS


def _attr_def(attrs: dict[str, dict[str, Any]], name: str, raw: str) -> dict[str, Any]:
    attr = attrs.get(name.lower())
    if attr is None or attr["name"] in WRITE_ONLY_DROPPED:
        raise UnknownTarget(400, f"The path {raw!r} names no attribute Gatehouse keeps.", "invalidPath")
    if attr.get("mutability") == "readOnly":
        raise bad_request(f"The path {raw!r} names no writable attribute.", "invalidPath")
    return attr


def _sub_def(attr: dict[str, Any], sub: str, raw: str) -> dict[str, Any]:
    subs = {s["name"].lower(): s for s in attr.get("subAttributes", [])}
    found: dict[str, Any] | None = subs.get(sub.lower())
    if found is None:
        raise UnknownTarget(400, f"The path {raw!r} names no sub-attribute {sub!r}.", "invalidPath")
    return found


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return str(a.get("value", "")).lower() == str(b.get("value", "")).lower()
    return str(a).lower() == str(b).lower()


def apply_user_operation(doc: dict[str, Any], op: str, raw_path: str | None, value: Any) -> None:
    """Apply one PATCH operation to ``doc`` in place (validated; raises a SCIM 400 on anything odd).

    An operation on an attribute or schema Gatehouse does not know is ignored (and named in the provisioning log).
    """
    try:
        _apply_user_operation(doc, op, raw_path, value)
    except UnknownTarget:
        _ignore(str(raw_path))


def _apply_user_operation(doc: dict[str, Any], op: str, raw_path: str | None, value: Any) -> None:
    if raw_path is None or raw_path == "":
        if op == "remove":
            raise bad_request("A remove operation needs a path.", "noTarget")
        if not isinstance(value, dict):
            raise bad_request("An operation without a path needs an object value.", "invalidSyntax")
        for key, sub_value in value.items():
            if str(key).lower() in IGNORED_USER_KEYS:
                continue
            if str(key).lower() in WRITE_ONLY_DROPPED:
                _ignore(str(key))
                continue
            apply_user_operation(doc, op, str(key), sub_value)
        return
    path = parse_path(raw_path)
    container, attrs = _container(doc, path)
    if not path.attr and path.urn:  # the whole extension object (parse_path's only attribute-less Path)
        urn = path.urn
        if op == "remove":
            doc.pop(urn, None)
            return
        if not isinstance(value, dict):
            raise _type_error(raw_path, "an object", value)
        normalized = normalize_user({urn: value}).get(urn, {})
        if op == "replace":
            doc[urn] = normalized
        else:
            container.update(normalized)
        return
    attr = _attr_def(attrs, path.attr, raw_path)
    name = attr["name"]

    if path.value_filter is not None:
        if not (attr.get("multiValued") and attr["type"] == "complex"):
            raise bad_request(f"{raw_path!r}: a value filter needs a multi-valued attribute.", "invalidPath")
        items: list[dict[str, Any]] = container.setdefault(name, [])
        hits = [i for i, item in enumerate(items) if matches(path.value_filter, item)]
        if op == "remove":
            if path.sub:
                sub = _sub_def(attr, path.sub, raw_path)["name"]
                for i in hits:
                    items[i].pop(sub, None)
            else:
                container[name] = [item for i, item in enumerate(items) if i not in hits]
            return
        if path.sub:
            sub_attr = _sub_def(attr, path.sub, raw_path)
            coerced = coerce_value(value, sub_attr, raw_path)
            if not hits:
                # Entra replaces emails[type eq "work"].value on a user that has no work email yet.
                seed = simple_equalities(path.value_filter)
                if seed is None:
                    raise bad_request(f"No value matches {raw_path!r}.", "noTarget")
                items.append(coerce_value({**seed, sub_attr["name"]: coerced}, attr, raw_path, single=True))
                return
            for i in hits:
                items[i][sub_attr["name"]] = coerced
            return
        coerced_item = coerce_value(value, attr, raw_path, single=True)
        if not hits:
            raise bad_request(f"No value matches {raw_path!r}.", "noTarget")
        for i in hits:
            items[i] = {**items[i], **coerced_item} if op == "add" else coerced_item
        return

    if path.sub:
        if attr["type"] != "complex" or attr.get("multiValued"):
            raise bad_request(f"{raw_path!r}: use a value filter to change part of a multi-valued attribute.", "invalidPath")
        sub_attr = _sub_def(attr, path.sub, raw_path)
        target = container.setdefault(name, {})
        if op == "remove":
            target.pop(sub_attr["name"], None)
            return
        coerced = coerce_value(value, sub_attr, raw_path)
        if coerced is None:
            target.pop(sub_attr["name"], None)
        else:
            target[sub_attr["name"]] = coerced
        return

    if op == "remove":
        if attr.get("multiValued") and value not in (None, [], {}):
            # Entra's form: {"op":"Remove","path":"emails","value":[{"value":"x"}]} removes only those.
            listed = coerce_value(value, attr, raw_path)
            container[name] = [
                item for item in container.get(name, []) if not any(_same_value(item, x) for x in listed)
            ]
        else:
            container.pop(name, None)
        return
    coerced = coerce_value(value, attr, raw_path)
    if coerced is None:
        container.pop(name, None)
        return
    if op == "add" and attr.get("multiValued"):
        current = container.setdefault(name, [])
        for item in coerced:
            if not any(_same_value(item, x) for x in current):
                current.append(item)
        return
    if attr["type"] == "complex" and not attr.get("multiValued") and isinstance(container.get(name), dict):
        # RFC 7644 §3.5.2.1 and §3.5.2.3: add and replace of a complex attribute set the sub-attributes given
        # and leave the others as they are ({"name": {"givenName": "Ali"}} keeps familyName).
        container[name].update(coerced)
        return
    container[name] = coerced


def normalize_op(operation: Any) -> tuple[str, str | None, Any]:
    if not isinstance(operation, dict):
        raise bad_request("Each PATCH operation must be an object.", "invalidSyntax")
    lowered = {str(k).lower(): v for k, v in operation.items()}
    op = lowered.get("op")
    if not isinstance(op, str) or op.lower() not in ("add", "remove", "replace"):
        raise bad_request(f"Unknown PATCH op {op!r}: use add, remove or replace.", "invalidSyntax")
    path = lowered.get("path")
    if path is not None and not isinstance(path, str):
        raise bad_request("A PATCH path must be a string.", "invalidPath")
    return op.lower(), path, lowered.get("value")


def patch_operations(body: Any, max_ops: int) -> list[tuple[str, str | None, Any]]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "invalidSyntax")
    operations = next((v for k, v in body.items() if str(k).lower() == "operations"), None)
    if not isinstance(operations, list) or not operations:
        raise bad_request("A PATCH needs a non-empty \"Operations\" list.", "invalidSyntax")
    if len(operations) > max_ops:
        raise ScimError(413, f"A PATCH may carry at most {max_ops} operations.")
    return [normalize_op(o) for o in operations]


def patched_copy(doc: dict[str, Any], operations: list[tuple[str, str | None, Any]]) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    for op, path, value in operations:
        apply_user_operation(new, op, path, value)
    return new
