"""``driftwire alerts tail | show | forward``: alerts as they arrive on the topic, from a JSONL file, or
delivered to Alertmanager and webhooks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

from detectors.errors import DriftwireError
from detectors.events import AlertKind
from pipeline.cli.args import at_least


def add_parser(sub: Any, cfg: argparse.ArgumentParser) -> None:
    a = sub.add_parser("alerts", parents=[cfg], help="subscribe to alerts, or show an alerts file")
    asub = a.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = asub.add_parser("tail", parents=[cfg], help="print alerts from the alert topic as they come")
    t.add_argument("--json", action="store_true", help="one JSON object per line, for pipes")
    t.add_argument("--model", default=None, help="only this model")
    t.add_argument("--kind", default=None, choices=get_args(AlertKind), metavar="KIND",
                   help=f"only this kind ({', '.join(get_args(AlertKind))})")
    t.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    t.add_argument("--max-alerts", type=at_least(1), default=None)
    t.add_argument("--timeout", type=float, default=None)
    f = asub.add_parser("forward", parents=[cfg], help="deliver alerts to Alertmanager and webhooks (config: forward)",
                        description="Subscribe to the alert topic in its own consumer group and deliver every alert "
                                    "to the targets of the config's forward section; offsets are committed only "
                                    "after delivery.")
    f.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    f.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without alerts")
    s = asub.add_parser("show", help="print an alerts file (replay --alerts-out) one line per alert")
    s.add_argument("file", metavar="ALERTS.jsonl")


def alerts_cmd(args: argparse.Namespace) -> int:
    handlers = {"tail": tail_cmd, "show": show_cmd, "forward": forward_cmd}
    return handlers[args.action](args)


def forward_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.forward.command import forward_cmd as run_forwarder
    from pipeline.kafka.preflight import preflight

    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "alerts forward")
    return run_forwarder(config, secrets, args.timeout, args.idle_timeout)


def tail_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka.preflight import preflight
    from pipeline.kafka.tail import tail_alerts

    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "alerts tail")
    tail_alerts(config, secrets, as_json=args.json, model=args.model, kind=args.kind,
                from_beginning=args.from_beginning, max_alerts=args.max_alerts, timeout=args.timeout)
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    from pipeline.edge.alerts import read_alerts, render_alert

    path = Path(args.file)
    if not path.is_file():
        raise DriftwireError(f"no such alerts file: {path}")
    alerts = read_alerts(path)
    color = sys.stdout.isatty()
    print(f"{len(alerts)} alerts from {path}", file=sys.stderr)
    for alert in alerts:
        print(render_alert(alert, color))
    return 0
