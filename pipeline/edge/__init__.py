"""The edge: where bytes meet typed structs. Input events are decoded (:mod:`.decode`), recorded logs
read (:mod:`.logfile`), alerts encoded, rendered (:mod:`.alerts`) and written (:mod:`.sinks`), training
files read with their types for a baseline (:mod:`.training`)."""
