"""The HTML drift report (:mod:`.build`): the engine's evaluation trace as series (:mod:`.trace`, :mod:`.curve`),
the display-only parts (:mod:`.display`), the sections of a model (:mod:`.sections`), the page
(:mod:`.page`) and inline SVG charts (:mod:`.svg`)."""
