"""The one engine (:mod:`.engine`), built by one constructor (:mod:`.build`)."""
