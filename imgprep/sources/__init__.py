"""Dataset sources: one loader per layout (:mod:`.options` loads by kind)."""

KINDS = ("folders", "caltech", "coco", "mnist", "manifest")
