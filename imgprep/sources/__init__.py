"""Dataset sources: each loads one on-disk layout into a :class:`~imgprep.sources.loaded.Dataset`."""

KINDS = ("folders", "caltech", "coco", "mnist", "manifest")  # the layouts convert and prepare take
