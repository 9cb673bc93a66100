"""Kafka: client settings and producers (:mod:`.client`), the deterministic merge of a shard's
partitions (:mod:`.merge`), workarounds on kafka-python internals (:mod:`.workarounds`), the consumer
group source (:mod:`.source`), the alert and dead-letter publishers (:mod:`.publish`), and the
``produce`` / ``record`` / ``alerts tail`` loops (:mod:`.produce`, :mod:`.record`, :mod:`.tail`)."""
