"""Recorded logs through the engine: in memory (:mod:`.replay`) or with state in Redis
(:mod:`.redis_replay`); synthetic logs for demos and benchmarks (:mod:`.synth`)."""
