"""A config file read as a careful parser would: bounded in size, time and expansion.

* At most :data:`MAX_CONFIG_BYTES` are read (``--config /dev/zero`` is refused after them),
  before any parsing; the text must be UTF-8 (a byte-order mark is allowed).
* YAML aliases are kept, but the size of the document they expand to is measured on the
  parsed node graph, where each anchored node is one object (so the measure costs one visit
  per distinct node), and refused beyond :data:`MAX_NODES` before anything walks the
  expansion: a "billion laughs" file of a few hundred bytes is refused in milliseconds.
  An alias inside its own anchor (a cycle) is refused too.

>>> load_yaml("a: &x [1, 2]\\nb: *x\\n", "c.yaml")
{'a': [1, 2], 'b': [1, 2]}
>>> bomb = "a: &a [x, x, x, x, x, x, x, x, x]\\n" + "".join(
...     f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\\n" for i in range(8))
>>> load_yaml(bomb, "bomb.yaml")
Traceback (most recent call last):
...
detectors.errors.ConfigError: config key '--config': bomb.yaml expands to more than 100000 YAML nodes \
(through its aliases): not a driftwire config
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from detectors.errors import ConfigError

if TYPE_CHECKING:
    from yaml.nodes import Node
MAX_CONFIG_BYTES = 256 * 1024
"""Largest config file read (the packaged defaults with every comment are about 12 KB)."""
MAX_NODES = 100_000
"""Most YAML nodes a config may expand to through its aliases."""


def read_config_text(path: str | Path) -> str:
    """The text of the config file ``path``: bounded, UTF-8, or a ConfigError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("--config", f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB: not a driftwire config")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("--config", f"{path} is not UTF-8 text (invalid byte at offset {exc.start})") from exc


def load_yaml(text: str, source: str | Path) -> object:
    """The YAML document in ``text`` (safe types only), its alias expansion bounded first."""
    import yaml  # only with a config file (a replay with the defaults never loads it)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml's parser when PyYAML has it
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, set(), source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError("--config", f"{source} is not valid YAML: {' '.join(str(exc).split())}") from exc
    except RecursionError as exc:
        raise ConfigError("--config", f"{source} is nested too deeply: not a driftwire config") from exc
    finally:
        loader.dispose()


def _expanded_size(node: Node, sizes: dict[int, int], open_: set[int], source: str | Path) -> int:
    """Nodes ``node`` expands to; each distinct node is measured once (``sizes`` by id)."""
    key = id(node)
    known = sizes.get(key)
    if known is not None:
        return known
    if key in open_:
        raise ConfigError("--config", f"{source} has an alias inside its own anchor: not a driftwire config")
    from yaml.nodes import MappingNode, SequenceNode

    open_.add(key)
    n = 1
    if isinstance(node, SequenceNode):
        n += sum(_expanded_size(child, sizes, open_, source) for child in node.value)
    elif isinstance(node, MappingNode):
        n += sum(_expanded_size(k, sizes, open_, source) + _expanded_size(v, sizes, open_, source)
                 for k, v in node.value)
    open_.discard(key)
    if n > MAX_NODES:
        raise ConfigError("--config", f"{source} expands to more than {MAX_NODES} YAML nodes (through its aliases): "
                                      "not a driftwire config")
    sizes[key] = n
    return n
