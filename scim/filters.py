"""SCIM filters to Django ``Q`` objects, scoped and counted in SQL.

Parsing is scim2-filter-parser's (its lexer and LALR parser); we subclass its Django Q
transpiler so that:

* an attribute we do not map is a 400 ``invalidFilter`` (the stock transpiler silently drops
  it, so ``userName eq "x" and nickName eq "y"`` would match by userName alone, and a filter on
  an unmapped attribute would return nothing, which makes Okta create a duplicate);
* each attribute compares the way RFC 7643 says (``userName`` case-insensitive, ``externalId``
  case-exact) and the way its index is built: ``userName eq`` becomes
  ``lower(scim_username) = lower(%s)``, served by the functional index
  ``(workspace_id, lower(scim_username))``, instead of the stock ``UPPER(x) = UPPER(%s)``;
* multi-valued attributes (``members.value``) become ``EXISTS`` subqueries, so no join
  duplicates rows and the count stays right;
* values are typed (booleans, timestamps) and a bad value is ``invalidFilter``, not a 500.

The caller adds the workspace scope to the same queryset, so tenancy is inside the SQL, and
counts and slices it in SQL (``COUNT(*)``, ``LIMIT/OFFSET``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Lower
from django.utils.dateparse import parse_datetime
from scim2_filter_parser import ast as scim2ast
from scim2_filter_parser.lexer import SCIMLexer
from scim2_filter_parser.parser import SCIMParser
from scim2_filter_parser.transpilers.django_q_object import Transpiler

from workspaces.models import TeamMembership

from .errors import ScimError
from .schemas import CORE_GROUP, CORE_USER
from .selectors import resource_pk

MAX_FILTER_LENGTH = 2000
MAX_COMPARISONS = 50
MAX_DEPTH = 64


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


@dataclass(frozen=True)
class Attr:
    """How one SCIM attribute is stored: a model field (or annotation) and how it compares."""

    field: str
    kind: str = "string"  # string | boolean | datetime | id | special
    # "lower": the field is a lower() annotation (indexed); compare with the lowered value.
    # "ci": case-insensitive lookups on a plain column; "exact": case-exact.
    case: str = "ci"
    build: Callable[[str, Any], Q] | None = None  # for kind == "special"


def _members_value(op: str, value: Any) -> Q:
    # Groups whose members include this member id, as EXISTS: never duplicates a group row.
    if op == "pr":
        return Q(Exists(TeamMembership.objects.filter(team=OuterRef("pk"))))
    if op not in ("eq", "ne"):
        raise invalid_filter("members.value supports eq, ne and pr.")
    member_id = resource_pk(str(value))  # ids match exactly, as in resource paths ("01" names nobody)
    if member_id is None:
        matched = Q(pk__in=[])
    else:
        matched = Q(Exists(TeamMembership.objects.filter(team=OuterRef("pk"), membership_id=member_id)))
    return ~matched if op == "ne" else matched


def _email_value(op: str, value: Any) -> Q:
    """emails.value is the login email: matched in a subquery on the users table, so the member query
    only joins it when this filter is used, and ``eq`` is served by the unique index on lower(email)."""
    if op == "pr":
        return Q()
    if op not in _LOOKUPS:
        raise invalid_filter(f"Unknown operator {op!r}.")
    if value is None:
        raise invalid_filter("The comparison on 'emails.value' needs a value.")
    from workspaces.models import User

    lookup = _LOOKUPS[op]
    users = User.objects.alias(email_ci=Lower("email")).filter(**{f"email_ci__{lookup}": str(value).lower()})
    matched = Q(user__in=users.values("pk"))
    return ~matched if op == "ne" else matched


def _email_type(op: str, value: Any) -> Q:
    # The member's login email is their one email, reported with type "work".
    if op == "pr":
        return Q()
    if op not in ("eq", "ne"):
        raise invalid_filter("emails.type supports eq, ne and pr.")
    is_work = str(value).lower() == "work"
    if op == "ne":
        is_work = not is_work
    return Q() if is_work else Q(pk__in=[])


# (attribute, sub-attribute) lower-cased -> storage. Annotations are added by the selectors.
USER_FILTER_ATTRS: dict[tuple[str, str | None], Attr] = {
    ("id", None): Attr("pk", kind="id"),
    ("username", None): Attr("username_ci", case="lower"),
    ("externalid", None): Attr("external_id", case="exact"),
    ("emails", "value"): Attr("", kind="special", build=_email_value),
    ("emails", None): Attr("", kind="special", build=_email_value),
    ("emails", "type"): Attr("", kind="special", build=_email_type),
    ("name", "givenname"): Attr("given_name"),
    ("name", "familyname"): Attr("family_name"),
    ("displayname", None): Attr("display_name"),
    ("active", None): Attr("is_active", kind="boolean"),
    ("meta", "lastmodified"): Attr("updated_at", kind="datetime"),
    ("meta", "created"): Attr("created_at", kind="datetime"),
}

GROUP_FILTER_ATTRS: dict[tuple[str, str | None], Attr] = {
    ("id", None): Attr("pk", kind="id"),
    ("displayname", None): Attr("name_ci", case="lower"),
    ("externalid", None): Attr("external_id", case="exact"),
    ("members", "value"): Attr("", kind="special", build=_members_value),
    ("members", None): Attr("", kind="special", build=_members_value),
    ("meta", "lastmodified"): Attr("updated_at", kind="datetime"),
    ("meta", "created"): Attr("created_at", kind="datetime"),
}

_LOOKUPS = {"eq": "exact", "ne": "exact", "co": "contains", "sw": "startswith", "ew": "endswith",
            "gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}


class ScimQTranspiler(Transpiler):
    """scim2-filter-parser's Q transpiler, made strict and index-aware (see the module docstring)."""

    def __init__(self, attrs: dict[tuple[str, str | None], Attr], core_uri: str) -> None:
        super().__init__({})
        self.attrs = attrs
        self.core_uri = core_uri.lower()
        self.comparisons = 0

    def _resolve(self, path: scim2ast.AttrPath, namespace: str | None = None) -> tuple[str, Attr]:
        uri = (path.uri or "").lower()
        key: tuple[str, str | None]
        if uri and uri != self.core_uri:
            raise invalid_filter(f"Filtering on attributes of {path.uri} is not supported.")
        if namespace:
            key = (namespace.lower(), str(path.attr_name).lower())
        else:
            key = (str(path.attr_name).lower(), path.sub_attr.value.lower() if path.sub_attr else None)
        attr = self.attrs.get(key)
        if attr is None:
            name = ".".join(k for k in key if k)
            raise invalid_filter(f"Filtering on {name!r} is not supported. See the Schemas endpoint and docs/scim.md.")
        return ".".join(k for k in key if k), attr

    def visit_LogExpr(self, node: scim2ast.LogExpr) -> Q:
        # The stock version drops a side that compiled to None; here every side compiles or raises.
        q1, q2 = self.visit(node.expr1), self.visit(node.expr2)
        return q1 & q2 if node.op.lower() == "and" else q1 | q2

    def visit_Filter(self, node: scim2ast.Filter) -> Q:
        if node.namespace is not None:
            # A value path: emails[type eq "work"] / members[value eq "x"]; compare inside that attribute.
            query = self._visit_in_namespace(node.expr, node.namespace.attr_name)
        else:
            query = self.visit(node.expr)
        return ~query if node.negated else query

    def _visit_in_namespace(self, expr: Any, namespace: str) -> Q:
        if isinstance(expr, scim2ast.Filter):
            inner = self._visit_in_namespace(expr.expr, namespace)
            return ~inner if expr.negated else inner
        if isinstance(expr, scim2ast.LogExpr):
            q1 = self._visit_in_namespace(expr.expr1, namespace)
            q2 = self._visit_in_namespace(expr.expr2, namespace)
            return q1 & q2 if expr.op.lower() == "and" else q1 | q2
        if isinstance(expr, scim2ast.AttrExpr):
            return self._compare(expr, namespace=namespace)
        raise invalid_filter("Unsupported filter expression.")

    def visit_AttrExpr(self, node: scim2ast.AttrExpr) -> Q:
        if isinstance(node.attr_path.attr_name, scim2ast.Filter):
            # emails[type eq "work"].value eq "x": the bracket filter AND the comparison on the sub-attribute.
            value_path: scim2ast.Filter = node.attr_path.attr_name
            namespace = value_path.namespace
            selector = self._visit_in_namespace(value_path.expr, namespace.attr_name)
            sub = namespace.sub_attr.value if namespace.sub_attr else None
            if sub is None:
                raise invalid_filter("A value filter needs a sub-attribute to compare, as in emails[type eq \"work\"].value.")
            inner = scim2ast.AttrExpr(node.value, scim2ast.AttrPath(sub, None, None), node.comp_value)
            return selector & self._compare(inner, namespace=namespace.attr_name)
        return self._compare(node)

    def _compare(self, node: scim2ast.AttrExpr, namespace: str | None = None) -> Q:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise invalid_filter(f"The filter has more than {MAX_COMPARISONS} comparisons.")
        name, attr = self._resolve(node.attr_path, namespace)
        op = node.value.lower()
        raw = node.comp_value.value if node.comp_value is not None else None
        if attr.kind == "special" and attr.build is not None:
            return attr.build(op, raw)
        if op == "pr":
            if attr.kind in ("boolean", "datetime", "id"):
                return Q(**{f"{attr.field}__isnull": False})
            return ~Q(**{attr.field: ""}) & Q(**{f"{attr.field}__isnull": False})
        if op not in _LOOKUPS:
            raise invalid_filter(f"Unknown operator {op!r}.")
        value = self._typed(name, attr, op, raw)
        lookup = _LOOKUPS[op]
        if attr.kind == "string" and attr.case == "ci":
            lookup = {"exact": "iexact", "contains": "icontains", "startswith": "istartswith",
                      "endswith": "iendswith"}.get(lookup, lookup)
        query = Q(**{f"{attr.field}__{lookup}": value})
        return ~query if op == "ne" else query

    @staticmethod
    def _typed(name: str, attr: Attr, op: str, raw: Any) -> Any:
        if raw is None:
            raise invalid_filter(f"The comparison on {name!r} needs a value.")
        if attr.kind == "boolean":
            text = str(raw).lower()
            if op not in ("eq", "ne") or text not in ("true", "false"):
                raise invalid_filter(f"{name!r} is a boolean: compare it with eq or ne and true or false.")
            return text == "true"
        if attr.kind == "datetime":
            if op in ("co", "sw", "ew"):
                raise invalid_filter(f"{name!r} is a timestamp: use eq, ne, gt, ge, lt or le.")
            parsed = parse_datetime(str(raw))
            if parsed is None:
                raise invalid_filter(f"{name!r} needs an RFC 3339 timestamp such as 2026-01-31T12:00:00Z.")
            return parsed
        if attr.kind == "id":
            if op not in ("eq", "ne"):
                raise invalid_filter("'id' supports eq, ne and pr.")
            pk = resource_pk(str(raw))  # exactly as in resource paths: "01", "+1" or "1 " name nobody
            return -1 if pk is None else pk  # an id that cannot exist: matches nothing, reveals nothing
        value = str(raw)
        return value.lower() if attr.case == "lower" else value


def _parse(text: str) -> Any:
    if len(text) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"The filter is longer than {MAX_FILTER_LENGTH} characters.")
    if not text.strip():
        raise invalid_filter("The filter is empty.")
    try:
        tree = SCIMParser().parse(SCIMLexer().tokenize(text))
    except RecursionError as exc:
        raise invalid_filter("The filter is nested too deeply.") from exc
    except Exception as exc:  # the parser raises several types (SCIMParserError, lexer errors, IndexError)
        raise invalid_filter(f"The filter could not be parsed: {str(exc)[:200]}") from exc
    if tree is None:
        raise invalid_filter("The filter could not be parsed.")
    if _depth(tree) > MAX_DEPTH:
        raise invalid_filter(f"The filter is nested more than {MAX_DEPTH} levels deep.")
    return tree


def _depth(tree: Any) -> int:
    """Depth of the parsed tree, measured without recursion (a hostile filter cannot blow the stack here)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        for name in getattr(node, "_fields", ()):
            child = getattr(node, name, None)
            if isinstance(child, scim2ast.AST):
                stack.append((child, depth + 1))
    return deepest


def compile_filter(text: str, attrs: dict[tuple[str, str | None], Attr], core_uri: str) -> Q:
    """Parse ``text`` with scim2-filter-parser and transpile it to a ``Q`` (or raise ``invalidFilter``)."""
    tree = _parse(text)
    try:
        return ScimQTranspiler(attrs, core_uri).transpile(tree)
    except ScimError:
        raise
    except RecursionError as exc:
        raise invalid_filter("The filter is nested too deeply.") from exc
    except Exception as exc:
        raise invalid_filter("The filter could not be understood.") from exc


def user_filter(text: str) -> Q:
    return compile_filter(text, USER_FILTER_ATTRS, CORE_USER)


def group_filter(text: str) -> Q:
    return compile_filter(text, GROUP_FILTER_ATTRS, CORE_GROUP)


# sortBy: the same attribute names, mapped to orderable fields.
USER_SORT_FIELDS = {
    "id": "pk", "username": "username_ci", "externalid": "external_id", "displayname": "display_name",
    "name.givenname": "given_name", "name.familyname": "family_name", "emails.value": "user__email",
    "emails": "user__email", "active": "is_active", "meta.lastmodified": "updated_at", "meta.created": "created_at",
}
GROUP_SORT_FIELDS = {
    "id": "pk", "displayname": "name_ci", "externalid": "external_id",
    "meta.lastmodified": "updated_at", "meta.created": "created_at",
}


def sort_field(sort_by: str, fields: dict[str, str], core_uri: str) -> str:
    key = sort_by.strip()
    if key.lower().startswith(core_uri.lower() + ":"):
        key = key[len(core_uri) + 1:]
    field = fields.get(key.lower())
    if field is None:
        raise ScimError(400, f"Sorting by {sort_by!r} is not supported.", "invalidValue")
    return field
