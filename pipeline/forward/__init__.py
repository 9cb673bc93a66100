"""``driftwire alerts forward``: alert events from the alert topic to Alertmanager and webhooks.

One concept per module: :mod:`.settings` (the ``forward:`` config section),
:mod:`.alertmanager` (an alert event as Alertmanager's API v2 wants it),
:mod:`.incidents` (the open incidents the forwarder remembers, for re-sends),
:mod:`.signing` (the webhook's HMAC signature), :mod:`.http` (one POST and what its
outcome means), :mod:`.retry` (the backoff policy), :mod:`.targets` (delivery to one
target), :mod:`.dead_letters` (alerts no target would take) and :mod:`.loop` (the
consumer: poll, deliver, commit).
"""
