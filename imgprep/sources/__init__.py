"""Dataset sources: each loads one on-disk layout into a :class:`~imgprep.sources.loaded.Dataset`.

Each kind is one module that registers a :class:`~imgprep.sources.registry.Kind`
(:mod:`imgprep.sources.registry`); the built-in ones are imported on first use.
"""

# The built-in kinds: name -> the module that registers it when imported.
BUILTIN = {
    "folders": "imgprep.sources.folders",
    "caltech": "imgprep.sources.caltech",
    "coco": "imgprep.sources.coco",
    "mnist": "imgprep.sources.mnist",
    "manifest": "imgprep.sources.gtmanifest",
}
KINDS = tuple(BUILTIN)  # the layouts the CLI's convert and prepare take
