"""Alert latency: producing the first drifted event -> the alert on the alert topic, at half capacity.

    .venv/bin/python -m benchmarks.alert_latency [--rate EV_PER_S] [--models 20] [--quick]

One ``driftwire run`` consumer on fresh 4-partition topics. The first events of every model (its
reference, 2,500 predictions each) are produced as a backlog and consumed at full speed; then the
rest of the log is produced at a steady offered load of half the live capacity: some normal
events, then the drifted ones (mean shift on num_0, missing values on num_1, flipped labels) for
every model at once. A listener on the alert topic stamps each alert on arrival.

Reported, p50 and p99:

- ``first_drift_to_alert``: per model, from producing its first drifted event to its first alert
  triggered at or after that event (the issue's figure; it includes the events a detector needs
  to see before the change is significant, so it depends on the per-model event rate);
- ``trigger_to_alert``: per alert, from producing the event it names (``event_id``) to its
  arrival: the pipeline's own delay (poll, batch, Redis commit, publish).

Capacity is the median steady rate of ``driftwire run`` in ``benchmarks/results/live_throughput.json``
when that is less than three hours old, otherwise the rate at which this run's backlog was consumed.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

from benchmarks.common import (
    RESULTS,
    LiveRig,
    banner,
    handle_sigterm,
    median,
    percentile,
    route,
    runtime_available,
    skipped,
    steady_rate,
    stop,
    synth_log,
    table,
    wait_progress,
    write_result,
)

NAME = "alert_latency"
TARGET_P99_S = 2.0
DRIFT_KINDS = {"data_drift", "data_quality", "concept_drift", "prediction_drift", "estimated_performance"}


def _capacity_from_results(max_age_s: float = 3 * 3600) -> float | None:
    path = RESULTS / "live_throughput.json"
    try:
        body = json.loads(path.read_text())
        when = datetime.fromisoformat(body["machine"]["date"].replace("Z", "+00:00"))
        if (datetime.now(UTC) - when).total_seconds() > max_age_s:
            return None
        rate = body["median_steady_events_per_s"]["driftwire"]
        return float(rate) if rate else None
    except (OSError, KeyError, ValueError, TypeError):
        return None


class AlertListener(threading.Thread):
    """Reads the alert topic from its start and stamps every alert with its arrival time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                      auto_offset_reset="earliest", fetch_max_wait_ms=20)
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for batch in self.consumer.poll(timeout_ms=50).values():
                now = time.monotonic()
                self.arrivals += [(now, json.loads(rec.value)) for rec in batch]
        self.consumer.close()


Item = tuple[str, bytes, bytes, str]


class LagProbe(threading.Thread):
    """Samples (time, messages committed in Redis) while the paced load runs."""

    def __init__(self, rig: LiveRig, group: str) -> None:
        super().__init__(daemon=True)
        self.rig, self.group = rig, group
        self.samples: list[tuple[float, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        client = self.rig.redis()
        while not self.halt.is_set():
            self.samples.append((time.monotonic(), self.rig.progress(client, self.group)))
            time.sleep(0.25)
        client.close()


def consumer_lag(probe: list[tuple[float, int]], sent_times: list[float], base: int) -> dict[str, Any]:
    """How far the consumer trailed the producer: messages produced but not committed, and for how long."""
    import bisect

    lags, delays = [], []
    for t, done in probe:
        produced = base + bisect.bisect_right(sent_times, t)
        if produced > base:
            lags.append(produced - done)
        k = done - base  # the k-th paced message was committed by t
        if 0 < k <= len(sent_times):
            delays.append(t - sent_times[k - 1])
    return {"messages_p50": percentile(lags, 50), "messages_max": max(lags) if lags else None,
            "seconds_p50": percentile(delays, 50), "seconds_max": max(delays) if delays else None}


def paced_produce(rig: LiveRig, items: list[Item], rate: float) -> tuple[dict[str, float], list[float], float]:
    """Send ``items`` at ``rate`` messages/s; returns send times by event_id and in order, and the achieved rate."""
    producer = rig.producer(linger_ms=2, batch_size=64 * 1024)
    sent: dict[str, float] = {}
    order: list[float] = []
    t0 = time.monotonic()
    for i, (stream, key, value, eid) in enumerate(items):
        due = t0 + i / rate
        now = time.monotonic()
        if due > now + 0.001:
            time.sleep(due - now)
        producer.send(rig.topics[stream], value=value, key=key)
        sent[eid] = now = time.monotonic()
        order.append(now)
    producer.flush(timeout=60)
    achieved = len(items) / (time.monotonic() - t0)
    producer.close(timeout=10)
    return sent, order, achieved


def _items(lines: list[bytes]) -> list[Item]:
    out = []
    for line in lines:
        stream, key, value = route(line)
        out.append((stream, key, value, json.loads(value)["event_id"]))
    return out


def run(rate: float | None = None, models: int = 20, quick: bool = False, timeout: float = 900) -> dict[str, Any]:
    from pipeline.replay.synth import SynthSpec

    banner(f"{NAME}: {models} models")
    ok, why = runtime_available()
    if not ok:
        return skipped(NAME, why)
    backlog_p, normal_p, drift_p = (models * 2500, 15_000, 30_000) if quick else (models * 2500, 40_000, 80_000)
    drift_at = backlog_p + normal_p
    path, n_lines = synth_log(SynthSpec(events=drift_at + drift_p, models=models, drift_at=drift_at))
    lines = path.read_bytes().splitlines()
    split = next(i for i, ln in enumerate(lines) if f'"event_id":"p-{backlog_p}"'.encode() in ln)
    capacity, source = (rate * 2, "--rate") if rate else (_capacity_from_results(), "live_throughput.json")
    rig = LiveRig("latency", 4)
    try:
        rig.create_topics()
        group = rig.group("run")
        client = rig.redis()
        proc = rig.driftwire_run(rig.config_path(group), log_name="run")
        rig.produce_lines(lines[:split])
        samples = wait_progress(rig, client, group, split, [proc], timeout)
        backlog_rate = steady_rate(samples, split)
        if capacity is None:
            capacity, source = backlog_rate, "this run's backlog"
        if not capacity or samples[-1][1] < split:
            raise RuntimeError(f"consumer did not catch up with the backlog: {rig.stderr_tail('run')}")
        offered = capacity / 2
        print(f"   backlog {split:,} consumed at {backlog_rate or 0:,.0f} ev/s; capacity {capacity:,.0f} ev/s "
              f"({source}); offering {offered:,.0f} ev/s for {len(lines) - split:,} events", flush=True)
        items = _items(lines[split:])
        listener = AlertListener(rig.bootstrap, rig.topics["alerts"])
        listener.start()
        probe = LagProbe(rig, group)
        probe.start()
        sent, order, achieved = paced_produce(rig, items, offered)
        end = wait_progress(rig, client, group, n_lines, [proc], 120)
        probe.halt.set()
        probe.join(5)
        time.sleep(3)  # the last batch's alerts
        listener.halt.set()
        listener.join(10)
        rc = stop(proc)
        client.close()
        drift_ids = {f"model-{m}": f"p-{drift_at + m}" for m in range(models)}
        drift_ts = _event_ts(lines[split:], set(drift_ids.values()))
        result = _analyse(listener.arrivals, sent, drift_ids, drift_ts)
        result.update({
            "workload": {"models": models, "backlog_lines": split, "paced_lines": len(items), "log_lines": n_lines,
                         "drift_at_prediction": drift_at, "drifts": ["mean_shift", "missing", "concept"]},
            "capacity_events_per_s": capacity, "capacity_source": source, "backlog_events_per_s": backlog_rate,
            "offered_events_per_s": offered, "achieved_offered_events_per_s": achieved,
            "caught_up": end[-1][1] >= n_lines, "exit_code": rc,
            "consumer_lag": consumer_lag(probe.samples, order, split),
        })
    finally:
        rig.cleanup()
    fd = result["first_drift_to_alert_s"]
    result["target_p99_s"] = TARGET_P99_S
    result["target_met"] = bool(fd["p99"] is not None and fd["p99"] < TARGET_P99_S and fd["n"] == models)
    _print(result)
    write_result(NAME, result)
    return result


def _event_ts(lines: list[bytes], ids: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ln in lines:
        body = json.loads(ln)
        if body["event_id"] in ids:
            out[body["event_id"]] = float(body["ts"])
            if len(out) == len(ids):
                break
    return out


def _dist(xs: list[float]) -> dict[str, Any]:
    return {"n": len(xs), "p50": percentile(xs, 50), "p99": percentile(xs, 99), "max": max(xs) if xs else None,
            "median": median(xs) if xs else None}


def _analyse(arrivals: list[tuple[float, dict[str, Any]]], sent: dict[str, float], drift_ids: dict[str, str],
             drift_ts: dict[str, float]) -> dict[str, Any]:
    firing = [(t, a) for t, a in arrivals if a.get("status") == "firing"]
    first: list[float] = []
    by_kind: dict[str, list[float]] = {}
    false_alarms = 0
    for model, eid in drift_ids.items():
        t0, ts0 = sent.get(eid), drift_ts.get(eid)
        if t0 is None or ts0 is None:
            continue
        mine = [(t, a) for t, a in firing if a.get("model") == model]
        false_alarms += sum(1 for _, a in mine if a.get("event_ts", 0) < ts0)
        hits = [(t, a) for t, a in mine if a.get("event_ts", 0) >= ts0 and a.get("kind") in DRIFT_KINDS]
        if hits:
            first.append(hits[0][0] - t0)
        seen: set[str] = set()
        for t, a in hits:
            if a["kind"] not in seen:
                seen.add(a["kind"])
                by_kind.setdefault(a["kind"], []).append(t - t0)
    trig = [t - sent[a["event_id"]] for t, a in arrivals if a.get("event_id") in sent]
    return {
        "alerts_received": len(arrivals),
        "firing_received": len(firing),
        "false_alarms_before_drift": false_alarms,
        "first_drift_to_alert_s": _dist(first),
        "first_drift_to_alert_by_kind_s": {k: _dist(v) for k, v in sorted(by_kind.items())},
        "trigger_to_alert_s": _dist(trig),
        "kinds_fired": sorted({a.get("kind", "?") + "/" + a.get("detector", "?") for _, a in firing}),
    }


def _print(r: dict[str, Any]) -> None:
    rows = [("first drifted event -> first alert (per model)", *_cells(r["first_drift_to_alert_s"]))]
    for k, d in r["first_drift_to_alert_by_kind_s"].items():
        rows.append((f"  ... first {k} alert", *_cells(d)))
    rows.append(("alert's trigger event -> alert (per alert)", *_cells(r["trigger_to_alert_s"])))
    print()
    print(table(["latency (s)", "n", "p50", "p99", "max"], rows))
    print(f"\noffered {r['offered_events_per_s']:,.0f} ev/s "
          f"(achieved {r['achieved_offered_events_per_s']:,.0f}) = half "
          f"of {r['capacity_events_per_s']:,.0f} ev/s ({r['capacity_source']}); {r['alerts_received']} alerts, "
          f"{r['false_alarms_before_drift']} firing before the drift")
    lag = r["consumer_lag"]
    print(f"consumer lag during the paced load: p50 {lag['messages_p50']} msgs / {_sec(lag['seconds_p50'])}, "
          f"max {lag['messages_max']} msgs / {_sec(lag['seconds_max'])}")
    print(f"p99 first-drift -> alert < {TARGET_P99_S} s: {'MET' if r['target_met'] else 'MISSED'}")


def _sec(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f} s"


def _cells(d: dict[str, Any]) -> tuple[Any, ...]:
    return d["n"], d["p50"], d["p99"], d["max"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=None, help="offered load in events/s (default: half of capacity)")
    p.add_argument("--models", type=int, default=20)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="10 models, shorter phases")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.models = min(a.models, 10)
    return run(a.rate, a.models, a.quick, a.timeout)


if __name__ == "__main__":
    main()
