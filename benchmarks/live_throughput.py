"""Live throughput: one ``driftwire run`` consumer vs a bare kafka-python consumer, same topics, same run.

    .venv/bin/python -m benchmarks.live_throughput [--events 1000000] [--repeats 1] [--bare-repeats 3] [--quick]

N events of the workload (6 models, so that the 4 partitions carry 2/1/2/1 models) are produced
into fresh 4-partition topics on the real broker. Then, each in a process of its own and a fresh
consumer group: (1) the bare consumer, kafka-python polling batches of 2,000 and decoding every
value with the pipeline's msgspec decoder, nothing else (the client's ceiling); (2) ``driftwire
run`` with Redis state, progress read from the committed offsets in Redis; (3) unless ``--no-decompose``,
``driftwire run`` with every detector list empty, the multivariate and performance ones included (the
same consumer, merge, ingest into the rings, label join, Redis commits; no tests evaluated): what the
ratio could be if detection cost nothing, so the gap splits into pipeline and detection. Rates are steady-state
(from 10% to 90% of the events) and wall (process start to the last event, start-up included);
the ratio is of medians. py-spy samples the consumer during its first run (the hot spots).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    LiveRig,
    banner,
    cpu_seconds,
    handle_sigterm,
    median,
    py_spy_top,
    ratio,
    runtime_available,
    skipped,
    steady_rate,
    stop,
    table,
    wait_progress,
    workload,
    write_result,
)

NAME = "live_throughput"
MODELS = 6  # murmur2 puts model-0..5 on partitions 0..3 as 2/1/2/1: the range assignor splits them 3/3
TARGET_RATIO = 0.5


def bare_consumer(bootstrap: str, topics: dict[str, str], group: str, target: int, timeout: float) -> dict[str, Any]:
    """Poll and decode until ``target`` messages: the ceiling the client library sets."""
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor

    from pipeline.edge.decode import Decoder

    stream_of = {t: s for s, t in topics.items()}
    decoder = Decoder()
    t_start, cpu0 = time.monotonic(), time.process_time()
    consumer = KafkaConsumer(
        *topics.values(), bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=2000, partition_assignment_strategy=[RangePartitionAssignor],
    )
    n, marks = 0, {}
    first = None
    deadline = t_start + timeout
    while n < target and time.monotonic() < deadline:
        records = consumer.poll(timeout_ms=200, max_records=2000)
        for tp, batch in records.items():
            stream = stream_of[tp.topic]
            for rec in batch:
                decoder.decode(rec.value, stream)  # type: ignore[arg-type]
            n += len(batch)
        if n and first is None:
            first = time.monotonic()
        for q in (0.1, 0.9):
            if q not in marks and n >= q * target:
                marks[q] = (time.monotonic(), n)
    t_end, cpu = time.monotonic(), time.process_time() - cpu0
    consumer.close()
    steady = None
    if 0.1 in marks and 0.9 in marks and marks[0.9][0] > marks[0.1][0]:
        steady = (marks[0.9][1] - marks[0.1][1]) / (marks[0.9][0] - marks[0.1][0])
    return {"messages": n, "wall_s": t_end - t_start, "first_record_s": (first or t_end) - t_start,
            "steady_events_per_s": steady, "wall_events_per_s": n / (t_end - t_start),
            "cpu_s": cpu, "events_per_cpu_s": n / cpu if cpu else None}


def _bare_child(rig: LiveRig, group: str, target: int, timeout: float) -> dict[str, Any]:
    args = [PYTHON, "-m", "benchmarks.live_throughput", "--bare-child", json.dumps(
        {"bootstrap": rig.bootstrap, "topics": {s: rig.topics[s] for s in ("features", "prediction", "label")},
         "group": group, "target": target, "timeout": timeout})]
    out = subprocess.run(args, cwd=ROOT, env=rig.env, capture_output=True, text=True, timeout=timeout + 60, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


NO_DETECTORS: dict[str, dict[str, list[str]]] = {
    "numeric": {"detectors": []}, "categorical": {"detectors": []}, "quality": {"detectors": []},
    "prediction": {"score_detectors": [], "class_detectors": []}, "concept": {"detectors": []},
    "health": {"detectors": []}, "multivariate": {"detectors": []},
    "performance": {"detectors": [], "estimators": []}}


def driftwire_once(rig: LiveRig, label: str, target: int, timeout: float, profile: bool,
                   detection: dict[str, Any] | None = None) -> dict[str, Any]:
    group = rig.group(label)
    client = rig.redis()
    t0 = time.monotonic()
    proc = rig.driftwire_run(rig.config_path(group, {"detection": detection} if detection else None), log_name=label)
    spy: dict[str, Any] = {}
    if profile:
        spy_thread = threading.Thread(target=_spy, args=(proc.pid, rig.tmp / f"{label}.pyspy", spy), daemon=True)
        spy_thread.start()
    cpu: list[float] = []

    def on_sample(_t: float, _n: int) -> None:
        c = cpu_seconds(proc.pid)
        if c is not None:
            cpu.append(c)

    samples = wait_progress(rig, client, group, target, [proc], timeout, on_sample=on_sample)
    t_done = samples[-1][0]
    done = samples[-1][1]
    rc = stop(proc)
    if profile:
        spy_thread.join(60)
    client.close()
    res = {
        "group": group, "messages": done, "complete": done >= target, "exit_code": rc,
        "wall_s": t_done - t0, "wall_events_per_s": done / (t_done - t0),
        "steady_events_per_s": steady_rate(samples, target),
        "first_commit_s": next((t - t0 for t, n in samples if n > 0), None),
        "cpu_s": cpu[-1] if cpu else None,
        "events_per_cpu_s": done / cpu[-1] if cpu and cpu[-1] else None,
    }
    if spy:
        res["py_spy_top"] = spy.get("top")
    if not res["complete"]:
        res["stderr_tail"] = rig.stderr_tail(label)
    return res


def _spy(pid: int, out: Path, holder: dict[str, Any]) -> None:
    time.sleep(8)  # past start-up and the reference phase
    holder["top"] = py_spy_top(pid, 20, out)


def run(events: int = 1_000_000, repeats: int = 1, bare_repeats: int = 3, timeout: float = 900,
        crc32c_dir: str | None = None, decompose: bool = True) -> dict[str, Any]:
    """``crc32c_dir``: a directory holding the ``crc32c`` C extension (``pip install --target DIR crc32c``),
    put on both consumers' PYTHONPATH, so kafka-python checks record CRCs in C instead of pure Python."""
    name = NAME if crc32c_dir is None else NAME + "_crc32c"
    banner(f"{name}: {events:,} events, {MODELS} models, 4 partitions")
    old_path = os.environ.get("PYTHONPATH")
    if crc32c_dir is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(x for x in (str(Path(crc32c_dir).resolve()), old_path) if x)
    try:
        return _run(name, events, repeats, bare_repeats, timeout, crc32c_dir, decompose)
    finally:
        if crc32c_dir is not None:
            if old_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old_path


def _run(name: str, events: int, repeats: int, bare_repeats: int, timeout: float,
         crc32c_dir: str | None, decompose: bool) -> dict[str, Any]:
    ok, why = runtime_available()
    if not ok:
        return skipped(name, why)
    path, lines = workload(events, MODELS)
    rig = LiveRig("live", 4)
    try:
        rig.create_topics()
        t0 = time.monotonic()
        with open(path, "rb") as fh:
            sent = rig.produce_lines(fh)
        produce_s = time.monotonic() - t0
        total = rig.end_offsets()
        print(f"   produced {total:,} messages in {produce_s:.1f} s ({sent})", flush=True)
        bare, live, nodet = [], [], []
        for r in range(max(repeats, bare_repeats)):
            if r < bare_repeats:
                bare.append(_bare_child(rig, rig.group(f"bare{r}"), total, timeout))
                print(f"   bare  {r + 1}: {_line(bare[-1])}", flush=True)
            if r < repeats:
                live.append(driftwire_once(rig, f"run{r}", total, timeout, profile=(r == 0)))
                print(f"   drift {r + 1}: {_line(live[-1])}", flush=True)
            if decompose and r < repeats:
                nodet.append(driftwire_once(rig, f"nodet{r}", total, timeout, False, NO_DETECTORS))
                print(f"   no-detectors {r + 1}: {_line(nodet[-1])}", flush=True)
    finally:
        rig.cleanup()
    result = _summarise(bare, live, total, lines, produce_s)
    if nodet:
        result["no_detectors"] = nodet
        result.update(_decomposition(bare, live, nodet))
    result["kafka_crc32c"] = "C extension (crc32c package)" if crc32c_dir else "kafka-python's pure-Python fallback"
    _print(result)
    write_result(name, result)
    return result


def _line(r: dict[str, Any]) -> str:
    s = r.get("steady_events_per_s")
    return (f"{r['messages']:,} msgs, wall {r['wall_s']:.1f} s ({r['wall_events_per_s']:,.0f} ev/s), "
            f"steady {s:,.0f} ev/s" if s else f"{r['messages']:,} msgs, wall {r['wall_s']:.1f} s, steady n/a")


def _summarise(bare: list[dict[str, Any]], live: list[dict[str, Any]], total: int, lines: int,
               produce_s: float) -> dict[str, Any]:
    def med(rs: list[dict[str, Any]], k: str) -> float | None:
        xs = [r[k] for r in rs if r.get(k)]
        return median(xs) if xs else None

    b_steady, l_steady = med(bare, "steady_events_per_s"), med(live, "steady_events_per_s")
    b_wall, l_wall = med(bare, "wall_events_per_s"), med(live, "wall_events_per_s")
    r_steady = ratio(l_steady, b_steady) if l_steady and b_steady else None
    b_cpu, l_cpu = med(bare, "events_per_cpu_s"), med(live, "events_per_cpu_s")
    return {
        "workload": {"messages": total, "log_lines": lines, "models": MODELS, "partitions": 4, "features": 20},
        "produce_s": round(produce_s, 1),
        "bare": bare, "driftwire": live,
        "median_steady_events_per_s": {"bare": b_steady, "driftwire": l_steady},
        "median_wall_events_per_s": {"bare": b_wall, "driftwire": l_wall},
        "ratio_steady": r_steady,
        "ratio_wall": ratio(l_wall, b_wall) if l_wall and b_wall else None,
        "median_events_per_cpu_s": {"bare": b_cpu, "driftwire": l_cpu},
        "ratio_per_cpu_s": ratio(l_cpu, b_cpu) if l_cpu and b_cpu else None,
        "target_ratio": TARGET_RATIO,
        "target_met": bool(r_steady and r_steady >= TARGET_RATIO and all(r["complete"] for r in live)),
    }


def _decomposition(bare: list[dict[str, Any]], live: list[dict[str, Any]],
                   nodet: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU microseconds per event: the client's share (poll + decode, as the bare consumer does); the
    runtime and ingest (merge, rings, label join, Redis commits: the run with every detector off);
    the detectors' evaluations (the rest)."""
    def us(rs: list[dict[str, Any]]) -> float | None:
        xs = [r["events_per_cpu_s"] for r in rs if r.get("events_per_cpu_s")]
        return 1e6 / median(xs) if xs else None

    b, full, nd = us(bare), us(live), us(nodet)
    steady = [r["steady_events_per_s"] for r in nodet if r.get("steady_events_per_s")]
    b_steady = [r["steady_events_per_s"] for r in bare if r.get("steady_events_per_s")]
    return {
        "cpu_us_per_event": {"bare": b, "driftwire_no_detectors": nd, "driftwire": full},
        "cpu_us_per_event_split": None if None in (b, full, nd) else {
            "client_poll_decode": b, "runtime_and_ingest": nd - b, "evaluation": full - nd},  # type: ignore[operator]
        "ratio_steady_no_detectors": ratio(median(steady), median(b_steady)) if steady and b_steady else None,
    }


def _print(r: dict[str, Any]) -> None:
    s, w = r["median_steady_events_per_s"], r["median_wall_events_per_s"]
    c = r["median_events_per_cpu_s"]
    rows = [("bare kafka-python poll+decode", len(r["bare"]), s["bare"], w["bare"], 1.0, c["bare"], 1.0),
            ("driftwire run (Redis state)", len(r["driftwire"]), s["driftwire"], w["driftwire"], r["ratio_steady"],
             c["driftwire"], r["ratio_per_cpu_s"])]
    if r.get("no_detectors"):
        nd = r["no_detectors"]
        nd_steady = median([x["steady_events_per_s"] for x in nd if x.get("steady_events_per_s")] or [0.0])
        nd_cpu = median([x["events_per_cpu_s"] for x in nd if x.get("events_per_cpu_s")] or [0.0])
        nd_wall = median([x["wall_events_per_s"] for x in nd])
        cpu_ratio = ratio(nd_cpu, c["bare"]) if nd_cpu and c["bare"] else None
        rows.append(("driftwire run, no detectors", len(nd), nd_steady, nd_wall, r["ratio_steady_no_detectors"],
                     nd_cpu, cpu_ratio))
    print()
    print(table(["consumer", "runs", "steady ev/s", "wall ev/s", "x bare (steady)", "ev per CPU-s", "x bare (CPU)"],
                rows))
    print(f"\nlive/bare >= {TARGET_RATIO}: {'MET' if r['target_met'] else 'MISSED'}"
          f" ({r['workload']['messages']:,} messages, wall ratio {r['ratio_wall'] or float('nan'):.2f})")
    split = r.get("cpu_us_per_event_split")
    if split:
        print("\nCPU per event (medians): " + ", ".join(f"{k} {v:.1f} us" for k, v in split.items()))
    top = (r["driftwire"] or [{}])[0].get("py_spy_top")
    if top:
        print("\nhot spots (py-spy, driftwire run, own samples):")
        own = [t for t in top if "frame" in t]
        print(table(["own %", "incl %", "frame"],
                    [(f"{100 * t['own_share']:.1f}", f"{100 * t['inclusive_share']:.1f}", t["frame"][:100])
                     for t in own[:12]]))
        incl: list[dict[str, Any]] = next((t["inclusive"] for t in top if "inclusive" in t), [])
        print("\nwhere the time goes (py-spy, inclusive, driftwire and kafka-python frames):")
        print(table(["incl %", "frame"], [(f"{100 * t['inclusive_share']:.1f}", t["frame"][:100]) for t in incl[:16]]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="log lines produced (predictions + labels)")
    p.add_argument("--repeats", type=int, default=1, help="driftwire runs")
    p.add_argument("--bare-repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="150k events")
    p.add_argument("--crc32c-dir", default=None, help="run with the crc32c C extension from DIR on PYTHONPATH")
    p.add_argument("--no-decompose", action="store_true", help="skip the run with every detector off")
    p.add_argument("--bare-child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    handle_sigterm()
    if a.bare_child:
        spec = json.loads(a.bare_child)
        res = bare_consumer(spec["bootstrap"], spec["topics"], spec["group"], spec["target"], spec["timeout"])
        sys.stdout.write(json.dumps(res) + "\n")
        return res
    if a.quick:
        a.events = min(a.events, 150_000)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(a.events, a.repeats, a.bare_repeats, a.timeout, a.crc32c_dir, not a.no_decompose)


if __name__ == "__main__":
    main()
