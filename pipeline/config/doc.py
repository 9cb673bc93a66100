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
    return lines


def default_yaml() -> str:
    return HEADER + "\n".join(render(Config())) + "\n"


if __name__ == "__main__":
    sys.stdout.write(default_yaml())
