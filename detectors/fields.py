"""The state vocabulary: every persisted field name, built and parsed here and nowhere else.

A model version's state is a flat map of field name to bytes (in the live runtime one Redis
hash per version; :mod:`pipeline.keys` builds the Redis keys around it). The fields, for schema
version 4 (:data:`SCHEMA_VERSION`)::

    schema                    the layout's schema version (msgpack int); absent: version 0
    m                         the version's scalars (Meta)
    c:<column>                a column's scalars (ColumnMeta, with its calibration once frozen)
    rc:<column>               a categorical column's reference counts
    <ring>:@<first>:<owner>   one segment of a ring: the values from absolute position <first> on
                              (:mod:`detectors.codec`), ring kinds:
                                r, v, f   a column's reference values (numeric; categorical: each value's
                                          category by first appearance), window values, window flags
                                rf        a column's reference flags, in arrival order
                                t         event times of the window (owner feat or out)
                                er, ew, et  the error reference, error window, error event times (owner err)
                                lg        recent ingest lags (owner lag)
                                pr        the performance reference being gathered (owner: its column,
                                          err, s, lab, pred; deleted once it is summarised)
                                pw, ps    the performance windows of joined labels (err, s, y, ts) and
                                          of scored predictions (cell, ts)
    j                         label-join counters and the pairs joined since the last evaluation
                              (prediction time, seq, error, score, label class, predicted class)
    pc:<chunk>, lc:<chunk>    waiting predictions, labels: 64 slots per field (a record with a
                              score has its own tags)
    pf, pfr, pfm              the performance state's scalars, its reference summary, its last findings
    p:<slot|id>, l:<slot|id>  waiting entries of the two former join layouts (read, then deleted)
    d:<detector>:<column>     a stream detector's snapshot (empty column: the error stream's)
    i:<kind>:<feature>        one incident's policy state (empty feature: none)
    g:<kind>                  the members of the open model-level incident of that kind (grouping)
    jm                        the multivariate detectors' joint reference rows: their scalars
    jr:@<first>:<feature>     a segment of a feature's joint reference rows, a ring of float32
                              (deleted once fitted; version 1: jr:<chunk>:<feature>, read)
    jf:<detector>             a multivariate detector's fitted model, or why it has none

(``g``, ``jm``, ``jr`` and ``jf`` came with multivariate drift and grouping, within version 1: a
state without them reads as no group open and no joint rows yet, and the joint reference is then
the next ``reference_size`` feature events.)

and the engine's own scalars live in the field ``engine`` of its own key. Version 3 had no
performance fields (``pr``, ``pw``, ``ps``, ``pf``, ``pfr``, ``pfm``), no score in a waiting
prediction and only (time, seq, error) per joined pair; version 2 kept, besides, each ring as fixed
chunks, ``<ring>:<chunk>:<owner>`` (raw array bytes of 128 values at a fixed place, a touched chunk
rewritten whole); version 1 had, besides, no ``rf`` ring and no calibration
(:mod:`detectors.calibration`) in ``c:<column>``; version 0 is version 1 without the ``schema``
field. All are read as they are (the performance state starts afresh; pairs joined before the
upgrade feed the error checks only; a column frozen without a calibration is calibrated as
independent values: the order it was measured in is gone); the next delta writes each ring as one
segment, deletes its chunks, and writes the version.

>>> ring_segment("v", 300, "x:y"), parse_ring_field("v:@300:x:y"), parse_ring_field("c:x")
('v:@300:x:y', ('v', True, 300, 'x:y'), None)
>>> ring_chunk("v", 3, "x:y"), parse_ring_field("v:3:x:y")
('v:3:x:y', ('v', False, 3, 'x:y'))
>>> incident("data_drift", None), parse_incident("i:data_drift:")
('i:data_drift:', 'data_drift')
>>> group("data_drift"), parse_group("g:data_drift"), parse_ring_field(ring_segment(JOINT_ROWS, 0, "x:y"))
('g:data_drift', 'data_drift', ('jr', True, 0, 'x:y'))
>>> join_chunk(PREDICTIONS, 2), parse_join("pc:2"), parse_join("l:p17")
('pc:2', ('p', True, '2'), ('l', False, 'p17'))
>>> schema_of({}), schema_of({SCHEMA: encode_schema()})
(0, 4)
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from detectors.errors import StateError

SCHEMA_VERSION = 4
"""Bump with any change of the layout, and teach the reader the older ones."""

SCHEMA = "schema"
META = "m"
JOIN = "j"
JOINT_META = "jm"
"""The joint reference rows' scalars (see :mod:`detectors.joint`)."""
ENGINE = "engine"

REF_VALUES, REF_FLAGS, WINDOW_VALUES, WINDOW_FLAGS = "r", "rf", "v", "f"
"""Ring kinds of a column."""
FEATURE_TIMES, OUTPUT_TIMES = "t:feat", "t:out"
ERROR_REF, ERROR_WINDOW, ERROR_TIMES = "er:err", "ew:err", "et:err"
LAGS = "lg:lag"
"""The version's own rings, named ``kind:owner`` (these names also key ``Meta.rings``)."""
JOINT_ROWS = "jr"
"""Ring kind of a feature's joint reference rows (:mod:`detectors.joint`)."""
PERF_RINGS = {"ref": "pr", "labelled": "pw", "scored": "ps"}
"""Ring kinds of the performance state's three groups (owner: the column)."""
RING_KINDS = frozenset({REF_VALUES, REF_FLAGS, WINDOW_VALUES, WINDOW_FLAGS, "t", "er", "ew", "et", "lg",
                        JOINT_ROWS, *PERF_RINGS.values()})
PERF_META, PERF_REF, PERF_MEMO = "pf", "pfr", "pfm"

PREDICTIONS, LABELS = "p", "l"
"""The label join's two waiting stores."""


def column_meta(column: str) -> str:
    return f"c:{column}"


def ref_counts(column: str) -> str:
    return f"rc:{column}"


def ring_segment(kind: str, first: int, owner: str) -> str:
    return f"{kind}:@{first}:{owner}"


def ring_chunk(kind: str, index: int, owner: str) -> str:
    """A ring chunk of schema version 1 (read, then deleted)."""
    return f"{kind}:{index}:{owner}"


def parse_ring_field(field: str) -> tuple[str, bool, int, str] | None:
    """(kind, segment?, first position or version-1 chunk index, owner) of a ring field, None for any other."""
    kind, _, rest = field.partition(":")
    if kind not in RING_KINDS:
        return None
    index, _, owner = rest.partition(":")
    if index.startswith("@"):
        return kind, True, int(index[1:]), owner
    return kind, False, int(index), owner


def split_ring(name: str) -> tuple[str, str]:
    """(kind, owner) of one of the version's own rings (e.g. ``t:feat``)."""
    kind, _, owner = name.partition(":")
    return kind, owner


def stream_snapshot(detector: str, column: str = "") -> str:
    return f"d:{detector}:{column}"


def incident(kind: str, feature: str | None) -> str:
    return f"i:{kind}:{feature if feature is not None else ''}"


def parse_incident(field: str) -> str | None:
    """The alert kind of an incident field (its feature is stored in the value), None for any other."""
    if not field.startswith("i:"):
        return None
    return field.split(":", 2)[1]


def group(kind: str) -> str:
    return f"g:{kind}"


def parse_group(field: str) -> str | None:
    """The alert kind of a group field, None for any other field."""
    return field[2:] if field.startswith("g:") else None


def joint_fit(detector: str) -> str:
    return f"jf:{detector}"


def join_chunk(store: str, chunk: int) -> str:
    return f"{store}c:{chunk}"


def join_entry(store: str, key: str | int) -> str:
    """A waiting entry of a former layout: one field per slot, or (older) per id."""
    return f"{store}:{key}"


def parse_join(field: str) -> tuple[str, bool, str] | None:
    """(store, chunked, chunk number or former key) of a waiting-entry field, None for any other."""
    head, sep, rest = field.partition(":")
    if not sep:
        return None
    if head in (PREDICTIONS, LABELS):
        return head, False, rest
    if head in (PREDICTIONS + "c", LABELS + "c"):
        return head[0], True, rest
    return None


def encode_schema() -> bytes:
    return msgspec.msgpack.encode(SCHEMA_VERSION)


def schema_of(fields: Mapping[str, bytes]) -> int:
    """The schema version stored fields were written with; :class:`StateError` if it cannot be read."""
    raw = fields.get(SCHEMA)
    if raw is None:
        return 0
    try:
        version = msgspec.msgpack.decode(raw, type=int)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise StateError(f"unreadable state schema version {raw!r}") from exc
    if not 0 <= version <= SCHEMA_VERSION:
        raise StateError(f"state schema version {version}: this driftwire reads versions 0 to {SCHEMA_VERSION}")
    return version
