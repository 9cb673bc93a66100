"""What the runtime tells operators: structured logs (:mod:`.logs`), Prometheus metrics
(:mod:`.metrics`), liveness and readiness (:mod:`.health`), progress bars (:mod:`.progress`), a
baseline's disagreement with the events (:mod:`.baseline`)."""
