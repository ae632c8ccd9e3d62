"""Dataset kinds: one :class:`Kind` object per source layout, registered by name.

Pillow's plugin registry is the model: each kind is one module (``imgprep/sources/<kind>.py``)
that ends with ``register(Kind(...))``.  The built-in modules are imported on first use
(:data:`imgprep.sources.BUILTIN`), so listing the CLI's commands loads none of them; a kind from
outside the package registers itself the same way and is then taken by ``convert``, ``prepare``
and the Processing job like the built-in ones.  Everything those steps ask of a kind is here:
which source options it takes, how it loads, its default split, whether it knows image sizes,
and what its image root is.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgprep.errors import UsageError
from imgprep.plugins import Registry
from imgprep.sources import BUILTIN

if TYPE_CHECKING:
    from imgprep.sources.loaded import Dataset
    from imgprep.sources.options import SourceOptions

# What a kind's image root is (the folder or prefix its lists' paths are relative to):
INPUT = "input"  # the input itself, a tree of images (folders, caltech): an S3 tree is listed, not copied
IMAGE_ROOT = "--image-root"  # given apart from the input (COCO's JSON names files under --image-root)
ROOT = "--root"  # the source option --root (a manifest's local copy of its S3 prefix)
WRITTEN = "written"  # the images are in memory (MNIST): convert writes them, prepare packs the arrays
IMAGE_ROOTS = (INPUT, IMAGE_ROOT, ROOT, WRITTEN)


@dataclass(frozen=True)
class DefaultSplit:
    """The split made when none is asked for (data with its own split keeps that one)."""

    fractions: tuple[tuple[str, float], ...] | None = (("train", 0.8), ("val", 0.2))
    train_per_class: int | None = None  # instead of fractions: this many training images per class


@dataclass(frozen=True)
class Kind:
    """One dataset kind.  ``loader(input, **keywords)`` returns the :class:`Dataset`; it is a
    function or ``"module:function"`` (imported on first load).  ``options`` names the
    :class:`~imgprep.sources.options.SourceOptions` fields the kind takes: any other one given
    is refused, never silently ignored."""

    name: str
    loader: Callable[..., Dataset] | str
    input: str  # what INPUT is, for messages ("instances JSON", "four IDX files")
    options: tuple[str, ...] = ()
    image_root: str = INPUT  # one of IMAGE_ROOTS
    default_split: DefaultSplit = DefaultSplit()
    sizes: bool = False  # the source records image sizes (hyperparameters get image_shape without decoding)
    local_input: bool = False  # the input must be a local file (the Processing job cannot download it)
    shardable: bool = True  # a ShardedByS3Key input (each host sees a share of the files) can be listed whole

    def __post_init__(self) -> None:
        if self.image_root not in IMAGE_ROOTS:
            raise ValueError(f"image_root must be one of {', '.join(IMAGE_ROOTS)}, got {self.image_root!r}")

    @property
    def walks_tree(self) -> bool:
        """The input is the image tree itself: its listing is the dataset."""
        return self.image_root == INPUT

    @property
    def writes_images(self) -> bool:
        return self.image_root == WRITTEN

    def load(self, input: str, options: SourceOptions, **extra: Any) -> Dataset:
        """Load ``input`` with the source options given (refusing those this kind does not
        take) and ``extra`` loader keywords from the run (None: not given)."""
        given = [f.name for f in dataclasses.fields(options) if getattr(options, f.name) is not None]
        unknown = [name for name in given if name not in self.options]
        if unknown:
            flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
            raise UsageError(f"{flags} cannot be used with {self.name} data")
        keywords = {**options.loader_options(), **{k: v for k, v in extra.items() if v is not None}}
        return self._loader()(input, **keywords)

    def _loader(self) -> Callable[..., Dataset]:
        if callable(self.loader):
            return self.loader
        module, _, name = self.loader.partition(":")
        loader: Callable[..., Dataset] = getattr(importlib.import_module(module), name)
        return loader

    def check_image_root(self, image_root: str | None, root_option: str | None) -> None:
        """Refuse, before anything is read, a prepare that could not find its images."""
        if self.image_root == IMAGE_ROOT and not image_root:
            raise UsageError(f"prepare {self.name} needs --image-root (the folder or s3:// prefix holding the images)")
        if self.image_root == ROOT and not (image_root or root_option):
            raise UsageError(f"prepare {self.name} needs --root (the local copy of the images' S3 prefix)")

    def check_remote_input(self) -> None:
        """Refuse an input the Processing job would have to download (see :attr:`local_input`)."""
        if self.local_input:
            raise UsageError(f"prepare {self.name} reads a local {self.input} (mount it as an input channel)")

    def check_sharded(self) -> None:
        """Refuse a ShardedByS3Key input of a kind read whole on every host."""
        if not self.shardable:
            raise UsageError(f"{self.name} input is {self.input}: give it as a FullyReplicated input")

    def image_root_for(self, dataset: Dataset, image_root: str | None) -> str:
        """The folder or prefix the lists' paths are relative to."""
        root = image_root or dataset.root
        if not root:
            flag = ROOT if self.image_root == ROOT else IMAGE_ROOT
            raise UsageError(f"prepare {self.name} needs {flag} (the folder holding the images)")
        return root


_REGISTRY: Registry[Kind] = Registry("dataset kind", BUILTIN)
KINDS = _REGISTRY.items
register, names, get = _REGISTRY.register, _REGISTRY.names, _REGISTRY.get
