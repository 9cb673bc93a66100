"""``driftwire record``: the input topics written back to a recorded log, in the live merge's order."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from pipeline.config import Config, Secrets
from pipeline.edge.decode import Decoder
from pipeline.edge.outputs import AtomicOutput
from pipeline.kafka.client import assigned_consumer, poll, stream_topics
from pipeline.kafka.merge import Merge
from pipeline.kafka.workarounds import caught_up_fn


def record_topics(config: Config, secrets: Secrets, out: str | Path, max_events: int | None,
                  idle_timeout: float, on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the input topics to a recorded log, merged into event-time order.

    Each partition is read in offset order; across partitions and topics the lines are
    merged by (event ts, stream rank, partition, offset), the same rule the consumer uses
    within a shard, so replaying the recorded log sees the events in a live consumer's
    order. Messages that are not JSON objects cannot carry a ``type`` and are skipped
    (counted).
    """
    topics = stream_topics(config)
    by_topic = {t: s for s, t in topics.items()}
    consumer = assigned_consumer(config, secrets, list(topics.values()), "record")
    consumer.seek_to_beginning()
    decoder = Decoder(config.runtime.max_message_bytes)
    merge = Merge(list(consumer.assignment()), by_topic)
    counts = {"written": 0, "skipped": 0}
    last = time.monotonic()
    try:
        # Ctrl-C ends a recording: the lines written so far are kept (each one is whole).
        with AtomicOutput(out, "the recorded log") as fh, contextlib.suppress(KeyboardInterrupt):
            while max_events is None or counts["written"] + counts["skipped"] < max_events:
                polled = poll(consumer, config, "record", max_records=config.kafka.max_poll_records)
                for tp, records in polled.items():
                    merge.add(tp, records, decoder)
                    last = time.monotonic()
                idle = time.monotonic() - last >= idle_timeout
                limit = None if max_events is None else max_events - counts["written"] - counts["skipped"]
                ready = merge.pop_ready(caught_up_fn(consumer, force=idle), limit)
                for item in ready:
                    _write_record(fh, item.value, by_topic[item.tp.topic], counts)
                if ready and on_progress is not None:
                    on_progress(counts["written"])
                if idle and not ready:
                    break
    finally:
        consumer.close()
    return counts


def _write_record(fh: AtomicOutput, value: bytes, stream: str, counts: dict[str, int]) -> None:
    try:
        obj = msgspec.json.decode(value)
    except msgspec.DecodeError:
        obj = None
    if not isinstance(obj, dict):
        counts["skipped"] += 1
        return
    obj.pop("type", None)
    fh.write(msgspec.json.encode({"type": stream, **obj}) + b"\n")
    counts["written"] += 1
