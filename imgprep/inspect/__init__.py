"""``imgprep inspect``: what a dataset holds, and what it holds twice.

``collect`` finds the splits of a path (``.rec`` files, ``.lst`` files with their image root, a
Ground Truth manifest, or a folder of them) and yields each image's bytes once; ``scan`` turns
every image into a few numbers in parallel (size, encoded bytes, content digest, perceptual
hashes) and keeps no pixels; ``analyse`` computes the per-split statistics and finds exact and
near duplicates within and across splits; ``text`` and ``html`` present the findings.
"""
