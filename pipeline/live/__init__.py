"""``driftwire run``: the long-running consumer (:mod:`.runner`)."""
