"""Equality oracle for refactors: the engine's observable behaviour on fixed workloads, as digests.

A change that must not alter detection (a restructure, a faster path, a new encoding) is checked by
saving the digests before it and comparing after::

    .venv/bin/python -m benchmarks.equality save /tmp/before.json      # on the old tree
    .venv/bin/python -m benchmarks.equality compare /tmp/before.json   # on the new tree

Per workload (a log) and settings variant it records: every alert (all fields but ``emitted_at``),
a hash of every batch's state delta (``take_delta()`` after each batch), every monitor's
``full_state()`` at the end (its rings in one canonical form, :func:`canonical_state`, so a new
encoding of the same values compares equal; the deltas are hashed as written, so there it shows),
a hash of the states restored after every batch from what a store would hold (the union of the
deltas so far), in the same canonical form (``stored_sha``: a new encoding of the deltas must decode
to the very same states), and the replay summary. The state's schema-version field
(``detectors.fields.SCHEMA``) is left out of the hashes: it names the layout, whose every other byte
is hashed, so digests saved before the field existed still compare. ``compare`` prints the differing
alerts and the first difference of each other kind, and exits 1 when anything differs. ``--quick``
runs a subset (about a minute).

Workloads: the detection benchmark's drift and drift-free streams (``benchmarks.detection``), the
throughput workload (``benchmarks.common.workload``), and an awkward log (dead letters naming their
model, a new feature mid-stream, a version rollout, late and unjoinable labels, non-finite values, a
stall of one model). Variants: the defaults; small windows with odd evaluation and tick cadences;
stream detectors on numeric features; a short stall threshold so ``event_gap`` fires.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from detectors.events import Alert, Event

CACHE = Path(__file__).resolve().parent / "results" / "equality-logs"
_enc = msgspec.json.Encoder(order="sorted")
STORED_EVERY = 1
"""Every this many batches, the stored state (the union of the deltas so far, as a store holds it) is
restored into a fresh engine and its canonical states hashed into ``stored_sha`` (0: never)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "small_odd": {"reference_size": 300, "window_size": 100, "eval_every": 37, "health": {"tick_every": 53},
                  "concept": {"reference_size": 150, "window_size": 120, "max_pending": 500}},
    "stream_on": {"numeric": {"detectors": ["ks", "chi2", "psi", "adwin", "page_hinkley"]},
                  "concept": {"detectors": ["error_rate", "adwin", "ddm"]}},
    "stall": {"params": {"event_gap": {"warning": 30.0, "critical": 120.0}}, "health": {"tick_every": 101}},
}


# ---- workloads --------------------------------------------------------------------------------

def _write(path: Path, events: Iterator[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for line in events:
            fh.write(line + b"\n")
    tmp.rename(path)
    return path


def _logged(events: list[Event]) -> Iterator[bytes]:
    from pipeline.edge.decode import encode_logged

    return (encode_logged(e) for e in events)


def detection_logs(quick: bool) -> dict[str, Path]:
    from benchmarks.detection.streams import CLEAN, DRIFT

    out: dict[str, Path] = {}
    seeds = (0,) if quick else (0, 1)
    for name, drift in DRIFT.items():
        for seed in seeds:
            path = CACHE / f"drift-{name}-s{seed}.jsonl"
            if not path.exists():
                _write(path, _logged(drift(np.random.default_rng(seed), 6000, 3500).events))
            out[f"drift/{name}/s{seed}"] = path
    n = 6000 if quick else 20000
    for name, clean in CLEAN.items():
        path = CACHE / f"clean-{name}-n{n}.jsonl"
        if not path.exists():
            _write(path, _logged(clean(np.random.default_rng(1000), n)))
        out[f"clean/{name}"] = path
    return out


def throughput_log(quick: bool) -> dict[str, Path]:
    from benchmarks.common import workload

    path, _ = workload(60_000 if quick else 300_000, models=6)
    return {"throughput": path}


def awkward_log() -> dict[str, Path]:
    path = CACHE / "awkward-v1.jsonl"
    if not path.exists():
        _write(path, _awkward_lines(np.random.default_rng(42)))
    return {"awkward": path}


def _awkward_lines(rng: np.random.Generator) -> Iterator[bytes]:
    """Two models; dead letters naming their model; features appearing; v2 rollout; late labels; a stall."""
    dumps = msgspec.json.encode
    t = 1.7e9
    for i in range(30_000):
        t += 0.5 if not 12_000 <= i < 12_050 else 40.0  # a burst of big gaps
        model = "a" if i % 3 else "b"
        version = "v2" if model == "a" and i > 20_000 and i % 2 else "v1"
        if model == "b" and 15_000 <= i < 17_000:
            continue  # model b stalls while a goes on
        feats: dict[str, object] = {"x": float(rng.normal()), "y": float(rng.exponential()),
                                    "c": str(rng.choice(["u", "v", "w"]))}
        if i > 9_000:
            feats["late_feature"] = float(rng.normal(3.0))
        if i % 997 == 0:
            feats["x"] = None
        if i % 4 == 1 and 5_000 < i < 8_000:
            yield b'{"type":"prediction","event_id":"bad%d","model":"%s","ts":"not-a-time"}' % (i, model.encode())
            continue
        score = float(1 / (1 + np.exp(-feats["x"]))) if feats["x"] is not None else 0.5  # type: ignore[operator]
        pid = f"p{i}"
        yield dumps({"type": "prediction", "event_id": pid, "model": model, "model_version": version, "ts": t,
                     "features": feats, "prediction": "yes" if score > 0.5 else "no", "score": score})
        if i % 2 == 0 and i >= 40:
            j = i - (40 if i % 6 else 700)  # most labels 40 events late, some 700
            label = "yes" if rng.random() < (0.3 if i < 22_000 else 0.6) else "no"
            lv = "v2" if model == "a" and j > 20_000 and j % 2 else "v1"
            yield dumps({"type": "label", "event_id": f"l{i}", "model": model, "model_version": lv, "ts": t,
                         "prediction_id": f"p{j}", "label": label})
        if i == 25_000:
            yield b'{"type":"label","event_id":"orphan","model":"a","ts":%f,"prediction_id":"nope","label":"yes"}' % t


# ---- running and digesting --------------------------------------------------------------------

def _alert_row(a: Alert) -> dict[str, Any]:
    d = msgspec.to_builtins(a)
    d.pop("emitted_at", None)
    return d  # type: ignore[no-any-return]


def _hash_delta(h: Any, delta: dict[Any, dict[str, bytes | None]]) -> None:
    from detectors.fields import SCHEMA

    for key in sorted(delta, key=repr):
        h.update(repr(key).encode())
        for name in sorted(set(delta[key]) - {SCHEMA}):
            value = delta[key][name]
            h.update(b"\x00" + name.encode() + b"\x01" + (b"<del>" if value is None else value))


CHUNK = 128
"""Values per ring chunk of the canonical form (schema version 1's layout)."""


def canonical_state(monitor: Any) -> dict[str, bytes]:
    """A monitor's ``full_state()`` with every ring in one fixed form, whatever its encoding: the raw
    chunks of ``CHUNK`` values at fixed places that schema version 1 stored (so digests saved before
    ring segments still compare). Ring fields of any other layout are decoded away, i.e. taken from
    the ring itself; every other field is hashed as stored."""
    from detectors import fields

    state = {name: value for name, value in monitor.full_state().items() if _ring(fields, name) is None}
    d = monitor.data
    rings = [(kind, col.name, ring) for col in d.columns.values() for kind, ring in _column_rings(fields, col)
             if ring is not None]
    rings += [(*fields.split_ring(name), ring) for name, ring in d.rings.items()]
    joint = getattr(getattr(d, "joint", None), "rows", None)  # the multivariate detectors' reference rows
    rings += [("jr", name, ring) for name, ring in (joint.rings.items() if joint is not None else ())]
    held = getattr(joint, "values", None)  # rows a column holds for its ring (read through the rows, not ring.arr)
    perf = getattr(d, "perf", None)  # the performance state's rings (schema version 4)
    rings += [(fields.PERF_RINGS[group], col, ring) for group, cols in (perf.rings.items() if perf else ())
              for col, ring in cols.items()]
    for kind, owner, ring in rings:
        arr = held(owner) if kind == "jr" and held is not None else ring.arr
        item = arr.itemsize
        for k in range(-(-ring.capacity // CHUNK)):
            raw = arr[k * CHUNK : (k + 1) * CHUNK].tobytes()
            want = item * min(CHUNK, ring.capacity - k * CHUNK)  # an array allocated lazily: zeros beyond it
            state[f"{kind}:{k}:{owner}"] = raw + bytes(want - len(raw))
    return state


def _column_rings(fields: Any, col: Any) -> list[tuple[str, Any]]:
    """A column's reference and window rings, by kind: read from its parts (a column made of parts has
    ``open_window``) or, on older trees, from the column itself. A window not made yet is made: its rings
    are in the canonical form all the same (zeros)."""
    if hasattr(col, "open_window"):
        ref, ref_flags, window = col.sample.values, col.sample.flags, col.open_window()
    else:
        ref, ref_flags, window = col.ref_ring, getattr(col, "ref_flags", None), col
    return [(fields.REF_VALUES, ref), ("rf", ref_flags), (fields.WINDOW_VALUES, window.values),
            (fields.WINDOW_FLAGS, window.flags)]


def _ring(fields: Any, name: str) -> Any:
    parse = getattr(fields, "parse_ring_field", None) or fields.parse_ring_chunk
    return parse(name)


def _apply(stored: dict[Any, dict[str, bytes]], delta: dict[Any, dict[str, bytes | None]]) -> None:
    """What a store holds after the delta (a None value deletes the field)."""
    for key, changed in delta.items():
        fields = stored.setdefault(key, {})
        for name, value in changed.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value


def _hash_states(h: Any, engine: Any) -> None:
    from detectors.fields import SCHEMA

    for key in sorted(engine.models):
        h.update(repr(key).encode())
        for name, value in sorted(canonical_state(engine.models[key]).items()):
            if name != SCHEMA:
                h.update(b"\x00" + name.encode() + b"\x01" + value)


class _DeltaHash:
    """The replay's checkpoint: hashes every batch's state delta instead of storing it, applies it to
    what a store would hold, and every STORED_EVERY batches hashes the canonical states restored from
    that (``rebuild`` makes a fresh engine to restore into)."""

    def __init__(self, rebuild: Any) -> None:
        self.sha, self.stored_sha = hashlib.sha256(), hashlib.sha256()
        self.batches = 0
        self.stored: dict[Any, dict[str, bytes]] = {}
        self.rebuild = rebuild

    def commit(self, delta: Any, _lines_end: int) -> None:
        self.batches += 1
        _hash_delta(self.sha, delta)
        _apply(self.stored, delta)
        if STORED_EVERY and self.batches % STORED_EVERY == 0:
            restored = self.rebuild()
            restored.restore(self.stored)
            assert not restored.refused_snapshots, restored.refused_snapshots
            _hash_states(self.stored_sha, restored)


def run_one(path: Path, variant: dict[str, Any], dead_letters: bool = True) -> dict[str, Any]:
    """Replay ``path`` with the detection settings ``variant``; the digests of what it did.

    ``dead_letters=False``: no dead letter is counted against its model (what replay did before
    issue 11), to show that counting them is all that changed."""
    from pipeline.config import Secrets, parse_config
    from pipeline.edge.sinks import ListSink
    from pipeline.engine.build import build_engine
    from pipeline.replay.replay import replay

    config = parse_config({"detection": variant}, environ={})
    secrets = Secrets(snapshot_key=b"equality-oracle")
    engine = build_engine(config, secrets)
    if not dead_letters:
        engine.note_dead_letter = lambda model, reason: None  # type: ignore[method-assign]
    sink = ListSink()
    deltas = _DeltaHash(lambda: build_engine(config, secrets))
    summary = replay(path, config, sink, secrets, engine=engine, checkpoint=deltas)
    rows = [_alert_row(a) for a in sink.alerts]
    states = hashlib.sha256()
    _hash_states(states, engine)
    return {
        "alerts": [_enc.encode(r).decode() for r in rows],
        "alerts_sha": hashlib.sha256(_enc.encode(rows)).hexdigest(),
        "deltas_sha": deltas.sha.hexdigest(),
        "batches": deltas.batches,
        "state_sha": states.hexdigest(),
        "stored_sha": deltas.stored_sha.hexdigest(),
        "models": len(engine.models),
        "summary": msgspec.json.decode(msgspec.json.encode(summary)),  # as saved: tuples become lists
    }


def workloads(quick: bool) -> dict[str, Path]:
    return {**detection_logs(quick), **throughput_log(quick), **awkward_log()}


def runs(quick: bool) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    logs = workloads(quick)
    for name, path in logs.items():
        yield f"{name}@default", path, VARIANTS["default"]
    extra = [n for n in logs if n.startswith(("drift/mean_shift_1sd", "drift/frozen", "drift/concept_drift_delayed",
                                              "clean/version_rollout", "throughput", "awkward"))]
    for vname in ("small_odd", "stream_on", "stall"):
        for name in extra:
            if quick and name == "throughput" and vname != "small_odd":
                continue
            yield f"{name}@{vname}", logs[name], VARIANTS[vname]


def collect(quick: bool, only: str | None = None, log: Callable[[str], None] = print,
            dead_letters: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path, variant in runs(quick):
        if only and only not in name:
            continue
        t0 = time.perf_counter()
        out[name] = run_one(path, variant, dead_letters)
        r = out[name]
        log(f"  {name:60s} {len(r['alerts']):5d} alerts  {r['batches']:4d} batches  "
            f"{time.perf_counter() - t0:6.1f} s")
    return out


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable differences (empty: identical)."""
    diffs: list[str] = []
    for name in sorted(set(old) | set(new)):
        if name not in old or name not in new:
            diffs.append(f"{name}: only in {'new' if name in new else 'old'}")
            continue
        a, b = old[name], new[name]
        if a["alerts_sha"] != b["alerts_sha"]:
            gone = [x for x in a["alerts"] if x not in b["alerts"]]
            added = [y for y in b["alerts"] if y not in a["alerts"]]
            diffs.append(f"{name}: alerts differ ({len(a['alerts'])} -> {len(b['alerts'])}): "
                         f"{len(gone)} only in old, {len(added)} only in new"
                         + "".join(f"\n    old {x}" for x in gone) + "".join(f"\n    new {y}" for y in added))
        for field in ("deltas_sha", "state_sha", "stored_sha", "batches", "models", "summary"):
            if field in a and field in b and a[field] != b[field]:
                diffs.append(f"{name}: {field} differs: {a[field]} -> {b[field]}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["save", "compare"])
    p.add_argument("file", type=Path)
    p.add_argument("--quick", action="store_true", help="fewer seeds and shorter streams (about a minute)")
    p.add_argument("--only", help="only runs whose name contains this text")
    p.add_argument("--no-dead-letter-count", action="store_true",
                   help="count no dead letter against its model (replay before issue 11)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    if args.action == "save":
        result = collect(args.quick, args.only)
        args.file.write_text(json.dumps({"quick": args.quick, "runs": result}, indent=1))
        print(f"saved {len(result)} runs to {args.file} in {time.perf_counter() - t0:.0f} s")
        return 0
    saved = json.loads(args.file.read_text())
    if saved["quick"] != args.quick:
        print(f"{args.file} was saved {'with' if saved['quick'] else 'without'} --quick; use the same", file=sys.stderr)
        return 2
    old = saved["runs"] if not args.only else {k: v for k, v in saved["runs"].items() if args.only in k}
    diffs = compare(old, collect(args.quick, args.only, dead_letters=not args.no_dead_letter_count))
    for d in diffs:
        print("DIFF", d)
    print(f"{len(old)} runs compared in {time.perf_counter() - t0:.0f} s: "
          f"{'IDENTICAL' if not diffs else f'{len(diffs)} differences'}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
