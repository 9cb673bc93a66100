"""Render the configuration structs as annotated YAML: ``config/default.yaml``.

Settings are declared once (the structs, with an attribute docstring per
field); the default file is generated from them, and a test checks it is
current. Regenerate with ``python -m pipeline.config.doc > config/default.yaml``.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import sys
import typing
from typing import Any

import msgspec
import yaml

from pipeline.config.settings import Config

HEADER = """\
# driftwire configuration: every setting with its default. Generated from the
# typed settings by `python -m pipeline.config.doc`; do not edit by hand.
# Secrets (passwords, the snapshot signing key) are read from the environment
# only: DRIFTWIRE_KAFKA_SASL_PASSWORD, DRIFTWIRE_REDIS_PASSWORD, DRIFTWIRE_SNAPSHOT_KEY.
"""


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a class and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in itertools.pairwise(body):
            if _is_field_doc(node, nxt):
                docs[node.target.id] = " ".join(nxt.value.value.split())  # type: ignore[attr-defined]
    return docs


def _is_field_doc(node: ast.stmt, nxt: ast.stmt) -> bool:
    return (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and isinstance(nxt, ast.Expr)
        and isinstance(nxt.value, ast.Constant)
        and isinstance(nxt.value.value, str)
    )


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def render(obj: msgspec.Struct, indent: int = 0) -> list[str]:
    pad, lines = "  " * indent, []
    docs = field_docs(type(obj))
    for field in msgspec.structs.fields(obj):
        value = getattr(obj, field.name)
        doc = docs.get(field.name)
        if doc:
            lines.append(f"{pad}# {doc}")
        if isinstance(value, msgspec.Struct):
            lines.append(f"{pad}{field.encode_name}:")
            lines += render(value, indent + 1)
        else:
            lines.append(f"{pad}{field.encode_name}: {_scalar(msgspec.to_builtins(value))}")
            lines += _list_items(field.type, indent)
    return lines


def _list_items(tp: Any, indent: int) -> list[str]:
    """A list of tagged structs (e.g. forward.targets) is empty by default: show one commented
    item of each kind, with its defaults, required keys as ``<required>``."""
    if typing.get_origin(tp) is not list:
        return []
    members = typing.get_args(typing.get_args(tp)[0]) or typing.get_args(tp)
    lines = []
    for cls in members:
        if not isinstance(cls, type):
            continue  # a list of literals (e.g. policy.group.kinds): nothing to show
        info = msgspec.inspect.type_info(cls)
        if not isinstance(info, msgspec.inspect.StructType) or info.tag is None:
            continue
        item = [f"{info.tag_field}: {info.tag}"]
        docs = field_docs(cls)
        for f in msgspec.structs.fields(cls):
            item += [f"# {docs[f.name]}"] if f.name in docs else []
            if f.required:
                item.append(f"{f.encode_name}: <required>")
            elif isinstance(f.default, msgspec.Struct):
                item += [f"{f.encode_name}:", *render(f.default, 1)]
            else:
                default = f.default_factory() if f.default is msgspec.NODEFAULT else f.default
                item.append(f"{f.encode_name}: {_scalar(msgspec.to_builtins(default))}")
        pad = "  " * indent
        lines += [f"{pad}# - {item[0]}", *(f"{pad}#   {line}" for line in item[1:])]
    return lines


def default_yaml() -> str:
    return HEADER + "\n".join(render(Config())) + "\n"


if __name__ == "__main__":
    sys.stdout.write(default_yaml())
