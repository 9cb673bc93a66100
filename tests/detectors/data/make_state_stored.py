"""Writes state_v<N>.msgpack: the stored states (the union of every delta) of monitors in schema version N.

N is the schema version of the ``detectors`` imported (it says which), so each file was written once
by the tree of an earlier commit, the way it can be written again from that tree:

- state_v2.msgpack, by git 1b43a16 (main before ring segments): each ring as fixed chunks of 128 raw
  values (``<ring>:<chunk>:<owner>``);
- state_v3.msgpack, by git 89b16a9 (main before the performance state): rings as segments, no
  performance fields, no score in a waiting prediction, (time, seq, error) per joined pair.

::

    git archive <commit> detectors tests/detectors/data | tar -x -C /tmp/old
    cp <repo>/tests/detectors/data/make_state_stored.py /tmp/old/tests/detectors/data/
    cd /tmp && PYTHONPATH=/tmp/old <repo>/.venv/bin/python /tmp/old/tests/detectors/data/make_state_stored.py

(from outside the checkout, so that the old ``detectors`` is the one imported). The cases, events and
settings are those of make_state_v0.py; the state is what a store holds after a delta was taken every
CHUNK events (so it also has the schema field and whatever deltas delete).

tests/detectors/test_state_schema.py restores each state with today's code and checks it goes on
exactly like a monitor fed the same events without interruption.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import msgspec

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("make_state_v0", HERE / "make_state_v0.py")
assert _spec is not None and _spec.loader is not None
V0 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(V0)


def stored_state(case: str) -> dict[str, bytes]:
    """The union of the deltas taken after each piece of CHUNK events, up to the case's cut."""
    from detectors.monitor import ModelMonitor

    m = ModelMonitor("m", "v1", V0.settings(case), V0.SECRET, baseline=V0.baseline(case))
    evs = V0.events()[: V0.CASES[case]["cut"]]
    stored: dict[str, bytes] = {}
    for i in range(0, len(evs), V0.CHUNK):
        m.process(evs[i : i + V0.CHUNK])
        for name, value in m.take_delta().items():
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = value
    return stored


def main() -> int:
    import detectors
    from detectors.fields import SCHEMA_VERSION

    out = HERE / f"state_v{SCHEMA_VERSION}.msgpack"
    states = {case: stored_state(case) for case in V0.CASES}
    out.write_bytes(msgspec.msgpack.encode(states))
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(states)} states) with {detectors.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
