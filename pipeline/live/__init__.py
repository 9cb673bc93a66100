"""``driftwire run``: the long-running consumer. The loop (:mod:`.runner`), the shards it holds
(:mod:`.membership`) and those waiting for a claim (:mod:`.claims`), claiming and stepping them
(:mod:`.steps`), a claimed shard (:mod:`.shard`), the Kafka client's upkeep (:mod:`.client`), the
watchdog (:mod:`.watchdog`), what this consumer wrote (:mod:`.written`), the service around them
(:mod:`.service`) and test-only fault injection (:mod:`.faults`)."""
