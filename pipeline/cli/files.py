"""The files a command reads, so that none of them is ever written over
(:func:`pipeline.edge.outputs.refuse_overlap`)."""

from __future__ import annotations

from pipeline.config import Config


def config_files(config_path: str | None, config: Config) -> list[str]:
    """The config file itself and every file it names: baselines, CA bundles, client certificates and keys.

    >>> config_files("c.yaml", Config(baselines={"m:v1": "m.baseline"}))
    ['c.yaml', 'm.baseline']
    """
    k, r = config.kafka, config.redis
    named = [*config.baselines.values(), k.ssl_cafile, k.ssl_certfile, k.ssl_keyfile, r.ssl_ca_certs]
    named += [t.ca_file for t in config.forward.targets]
    return [f for f in (config_path, *named) if f]
