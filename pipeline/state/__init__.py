"""Detector state: the store protocol and MemoryStore (:mod:`.store`), every Redis key (:mod:`.keys`),
and RedisStore (:mod:`.redis_store`), with the same semantics."""
