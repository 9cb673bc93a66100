"""Configuration: the typed settings (:mod:`.settings`), loading and validation
(:mod:`.load`), the generated reference file (:mod:`.doc`) and baseline files
(:mod:`.baselines`). The common names are re-exported here (all cheap to import)."""

from pipeline.config.load import load_config, load_secrets, parse_config
from pipeline.config.settings import Config, KafkaSettings, RedisSettings, RuntimeSettings, Secrets, Topics

__all__ = ["Config", "KafkaSettings", "RedisSettings", "RuntimeSettings", "Secrets", "Topics", "load_config",
           "load_secrets", "parse_config"]
