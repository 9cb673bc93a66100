"""``driftwire run``: the long-running consumer. The loop (:mod:`.runner`), a claimed shard
(:mod:`.shard`), the shards waiting for a claim (:mod:`.claims`), the watchdog (:mod:`.watchdog`),
the service around them (:mod:`.service`) and test-only fault injection (:mod:`.faults`)."""
