"""``imgprep verify``: prove a packed dataset is readable and right before a training job pays for it.

``target`` finds the shards and what they should hold (dataset record, class map,
hyperparameters), ``walk`` reads every record of a shard and checks framing, headers, labels
and the ``.idx``, ``run`` decodes payloads in parallel and adds the dataset-wide checks
(duplicate ids, counts, checksums, ``--against``) into one :class:`~imgprep.verify.report.Report`.
"""
