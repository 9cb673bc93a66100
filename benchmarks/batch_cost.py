"""Cost per batch in Redis: round trips and bytes written per batch, at two window sizes.

    .venv/bin/python -m benchmarks.batch_cost [--events 200000] [--windows 500,2000] [--quick]

The replay engine drives the live store: after each batch of 2,000 log lines (the consumer's
``max_poll_records``) the engine's state delta and the batch's alerts go to
:class:`pipeline.redis_store.RedisStore` in one commit, exactly as the consumer commits a
partition batch. Counted two ways: the store's own ``round_trips`` / ``bytes_written``
counters per batch, and Redis's INFO deltas (commandstats, total_net_input_bytes) over the
run on a private ``redis-server`` that nothing else talks to. The figure must not grow with
the window size (only the delta travels); Redis memory of the model keys, which may grow
with the window (it is bounded by it), is reported beside it.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import (
    PrivateRedis,
    banner,
    commandstats,
    handle_sigterm,
    median,
    net_input_bytes,
    percentile,
    ratio,
    table,
    workload,
    write_result,
)

NAME = "batch_cost"
_OBSERVER = {"info", "memory|usage", "scan", "ping", "client|setinfo", "hello"}
REFERENCE = 2000
BYTES_PER_EVENT = 120
"""Target for the 20-feature workload: bytes written per event (issue 12; 250 before ring segments)."""


def config_for(window: int, url: str, group: str) -> Any:
    from pipeline.config import parse_config

    tree: dict[str, Any] = {
        "detection": {"window_size": window, "reference_size": max(REFERENCE, window)},
        "redis": {"url": url, "key_prefix": "dwbench"},
        "kafka": {"group_id": group},
    }
    return parse_config(tree, environ={})


def measure(path: Any, window: int, url: str, batch_size: int = 2000) -> dict[str, Any]:
    import redis

    from pipeline.edge.alerts import encode_alert
    from pipeline.edge.decode import Decoder
    from pipeline.edge.logfile import read_log
    from pipeline.engine.build import build_engine
    from pipeline.state.redis_store import RedisStore

    group = f"bench-batch-w{window}-{int(time.time())}"
    config = config_for(window, url, group)
    from pipeline.config import Secrets

    engine = build_engine(config, None)
    store = RedisStore(config.redis, Secrets(), group)
    admin = redis.Redis.from_url(url)
    snap = store.claim(0)
    expected: dict[str, int] = {}
    rows: list[dict[str, float]] = []
    cs0, net0 = commandstats(admin), net_input_bytes(admin)
    t_start = time.perf_counter()
    for batch in read_log(path, Decoder(config.runtime.max_message_bytes), batch_size=batch_size):
        result = engine.process(batch.events)
        delta = engine.take_delta()
        alerts = [encode_alert(a) for a in result.alerts]
        rt0, b0, t0 = store.round_trips, store.bytes_written, time.perf_counter()
        nxt = {"log:0": batch.lines_end}
        store.commit(0, snap.epoch, expected, nxt, delta, alerts)
        rows.append(
            {
                "lines_end": batch.lines_end,
                "round_trips": store.round_trips - rt0,
                "bytes_written": store.bytes_written - b0,
                "delta_value_bytes": sum(len(v) for f in delta.values() for v in f.values() if v is not None),
                "delta_fields": sum(len(f) for f in delta.values()),
                "commit_ms": 1000 * (time.perf_counter() - t0),
                "alerts": len(alerts),
            }
        )
        expected = nxt
    wall = time.perf_counter() - t_start
    cs1, net1 = commandstats(admin), net_input_bytes(admin)
    mem = _model_memory(admin, store, len(engine.models))
    store.close()
    admin.close()
    steady = rows[len(rows) // 2 :]  # second half: references full, windows full
    calls = {k: int(v["calls"] - cs0.get(k, {}).get("calls", 0)) for k, v in cs1.items() if k not in _OBSERVER}
    calls = {k: v for k, v in calls.items() if v}
    usec = sum(v["usec"] - cs0.get(k, {}).get("usec", 0) for k, v in cs1.items()
               if k not in _OBSERVER and k != "evalsha")
    return {
        "window_size": window,
        "batches": len(rows),
        "steady_batches": len(steady),
        "lines": rows[-1]["lines_end"] if rows else 0,
        "wall_s": round(wall, 2),
        "round_trips_per_batch": _dist([r["round_trips"] for r in steady]),
        "bytes_written_per_batch": _dist([r["bytes_written"] for r in steady]),
        "delta_value_bytes_per_batch": _dist([r["delta_value_bytes"] for r in steady]),
        "delta_fields_per_batch": _dist([r["delta_fields"] for r in steady]),
        "commit_ms": _dist([r["commit_ms"] for r in steady]),
        "redis_info": {
            "command_calls": calls,
            "calls_per_batch": round(sum(calls.values()) / max(1, len(rows)), 2),
            # Redis time in the commands the scripts ran (EVALSHA's own figure includes them: left out)
            "command_usec_per_event": round(usec / max(1, rows[-1]["lines_end"] if rows else 1), 3),
            "net_input_bytes_per_batch": round((net1 - net0) / max(1, len(rows))),
        },
        "redis_memory": mem,
    }


def _dist(xs: list[float]) -> dict[str, float | None]:
    return {"median": median(xs), "p99": percentile(xs, 99), "max": max(xs) if xs else None}


def _model_memory(client: Any, store: Any, models: int) -> dict[str, Any]:
    keys = list(client.scan_iter(match=store.keys.pattern(0), count=1000))
    state = [k for k in keys if b":state:" in k and not k.endswith(b"__engine__")]
    sizes = [int(client.memory_usage(k, samples=0) or 0) for k in state]
    return {
        "state_keys": len(state),
        "models": models,
        "bytes_per_model_median": median(sizes) if sizes else None,
        "bytes_per_model_max": max(sizes) if sizes else None,
        "all_shard_keys_bytes": sum(int(client.memory_usage(k, samples=0) or 0) for k in keys),
    }


def run(events: int = 200_000, models: int = 4, windows: tuple[int, ...] = (500, 2000)) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {models} models, windows {windows}")
    path, lines = workload(events, models)
    out: list[dict[str, Any]] = []
    with PrivateRedis() as r:
        for w in windows:
            res = measure(path, w, r.url)
            out.append(res)
            print(f"   window {w}: {res['batches']} batches in {res['wall_s']} s", flush=True)
    base = out[0]
    growth = {
        k: ratio(out[-1][k]["median"], base[k]["median"]) for k in ("bytes_written_per_batch", "round_trips_per_batch")
    }
    per_event = {w["window_size"]: w["bytes_written_per_batch"]["median"] / 2000 for w in out}
    result = {
        "workload": {"lines": lines, "models": models, "batch_lines": 2000, "log": path.name},
        "by_window": out,
        "growth_largest_vs_smallest_window": growth,
        "bytes_written_per_event": per_event,
        "target": "round trips and bytes per batch do not grow with the window size (ratio ~1.0); "
                  f"at most {BYTES_PER_EVENT} bytes written per event",
        "target_met": all(g is not None and g <= 1.1 for g in growth.values())
        and all(b <= BYTES_PER_EVENT for b in per_event.values()),
    }
    _print(result)
    write_result(NAME, result)
    return result


def _print(r: dict[str, Any]) -> None:
    rows = []
    for w in r["by_window"]:
        rows.append((
            w["window_size"], w["round_trips_per_batch"]["median"], w["round_trips_per_batch"]["max"],
            w["redis_info"]["calls_per_batch"],
            w["bytes_written_per_batch"]["median"], w["bytes_written_per_batch"]["max"],
            w["redis_info"]["net_input_bytes_per_batch"], w["commit_ms"]["median"],
            w["redis_memory"]["bytes_per_model_median"],
        ))
    print()
    print(table(["window", "rt/batch med", "rt max", "redis calls/batch", "bytes/batch med", "bytes max",
                 "net in/batch", "commit ms", "redis B/model"], rows))
    g = r["growth_largest_vs_smallest_window"]
    per_event = ", ".join(f"w{w} {b:.1f}" for w, b in r["bytes_written_per_event"].items())
    print(f"\nlargest/smallest window: bytes/batch x{g['bytes_written_per_batch']:.2f}, "
          f"round trips x{g['round_trips_per_batch']:.2f}; bytes per event {per_event} (target <= {BYTES_PER_EVENT})"
          f" -> {'MET' if r['target_met'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--windows", default="500,2000", help="comma-separated window sizes (reference stays 2000)")
    p.add_argument("--quick", action="store_true", help="60k events")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events = min(a.events, 60_000)
    return run(a.events, a.models, tuple(int(w) for w in a.windows.split(",")))


if __name__ == "__main__":
    main()
