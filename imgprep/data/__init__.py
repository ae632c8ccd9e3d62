"""Read packed datasets in training code: numpy batches, PyTorch's DataLoader, any framework.

    from imgprep.data import Dataset, Loader, Transform

    train = Dataset("s3://bucket/data/train", transform=Transform.train(224), seed=1)
    loader = Loader(train, batch_size=64, threads=4)
    for epoch in range(90):
        for batch in loader:              # batch.images: uint8 (64, 224, 224, 3); batch.labels
            ...
        state = loader.state_dict()       # a small JSON-able dict: resume exactly from here

- :class:`Dataset`: a dataset record, a shard prefix or a ``.rec`` (+ ``.idx``), local or ``s3://``;
  ``ds[i]`` → ``(image, label)``; works as a map-style dataset of ``torch.utils.data.DataLoader``.
  Every record read is checked (labels against ``num_classes``, multi-hot 0/1, its CRC-32, the
  pixel count in its header, the files' generation: docs/reader-checks.md).
- :class:`Transform`: ``train`` (random resized crop + flip) or ``eval`` (shorter side + centre crop),
  decoded by the native core reading only the crop.
- :class:`Loader`: threaded batches in a seeded global order, per rank; ``state_dict`` / ``load_state_dict``.
- :class:`Sampler`: the same order for a DataLoader.
- :class:`Mixture`: several datasets in one order (concatenated, or weighted), labels kept apart or
  mapped by class name.

States resume with another ``world_size`` too (see :mod:`imgprep.data.order`; one rank's state
suffices, :func:`combine` checks several agree).

RecordIO only: an image-format folder (``prepare --format images``: ``train/`` + ``train_lst/train.lst``)
is read by MXNet's ``mx.image.ImageIter(path_imglist=..., path_root=...)``, as the algorithm reads it.
"""

from imgprep.data.dataset import Dataset, Sample
from imgprep.data.loader import Batch, Loader
from imgprep.data.mixture import Mixture
from imgprep.data.order import Order, combine, permutation
from imgprep.data.sampler import Sampler
from imgprep.data.transforms import Transform

__all__ = ["Batch", "Dataset", "Loader", "Mixture", "Order", "Sample", "Sampler", "Transform", "combine",
           "permutation"]
