"""The HTML drift report (:mod:`.build`), its series (:mod:`.series`) and inline SVG charts (:mod:`.svg`)."""
