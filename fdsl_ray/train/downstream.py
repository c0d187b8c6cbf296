"""Real downstream datasets by name, as uint8 tensors with fixed splits and few-shot subsets.

Every dataset here fits in memory at the sizes FDSL evaluation uses, so a loader returns plain
tensors: fine-tuning then needs no DataLoader workers and its data order is a pure function of
the seed. Splits that the dataset does not define are drawn from the seed (stratified), and a
few-shot subset keeps k images per class of the training split.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEFAULT_DATA_ROOT = os.path.join("~", ".cache", "fdsl_ray", "datasets")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_HELD_OUT_FRACTION = 0.5


@dataclass(frozen=True)
class DownstreamData:
    """One dataset's split. Images are uint8 [N, H, W] (grayscale) or [N, H, W, 3] (RGB)."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


@dataclass(frozen=True)
class _Split:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class _Request:
    """What a loader may use: where the files live, whether to fetch them, the split seed."""

    root: Path | None
    download: bool
    seed: int
    image_size: int


_Loader = Callable[[_Request], _Split]
_REGISTRY: dict[str, _Loader] = {}


def register_downstream(name: str) -> Callable[[_Loader], _Loader]:
    """Register `loader(request) -> _Split` under `name`."""

    def decorate(loader: _Loader) -> _Loader:
        if name in _REGISTRY:
            raise ValueError(f"downstream dataset {name!r} is already registered")
        _REGISTRY[name] = loader
        return loader

    return decorate


def list_downstream() -> list[str]:
    """Names accepted by `create_downstream`."""
    return sorted(_REGISTRY)


def _stratified_split(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test): each class's images shuffled by the seed, then halved."""
    rng = np.random.default_rng([seed, 0x5EED])
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out = int(round(len(members) * _HELD_OUT_FRACTION))
        if held_out == 0 or held_out == len(members):
            raise ValueError(f"class {label} has {len(members)} image(s): at least 2 are needed "
                             "to split it into train and test")
        test.append(members[:held_out])
        train.append(members[held_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _few_shot(
    labels: np.ndarray, shots: int, seed: int, class_names: tuple[str, ...]
) -> np.ndarray:
    """Indices of `shots` images per class, chosen by the seed, in a fixed (sorted) order."""
    rng = np.random.default_rng([seed, 0xF5])
    chosen = []
    for label in range(len(class_names)):
        members = np.flatnonzero(labels == label)
        if len(members) < shots:
            raise ValueError(f"shots={shots} is out of range: class {class_names[label]!r} has "
                             f"only {len(members)} training image(s)")
        chosen.append(rng.choice(members, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


@register_downstream("digits")
def _load_digits(request: _Request) -> _Split:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, no download)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train, test = _stratified_split(labels, request.seed)
    return _Split(images[train], labels[train], images[test], labels[test],
                  tuple(str(name) for name in bunch.target_names))


def _load_cifar(dataset_class: type, name: str, request: _Request) -> _Split:
    root = Path(os.path.expanduser(DEFAULT_DATA_ROOT)) if request.root is None else request.root
    download = request.download
    folder = root / dataset_class.base_folder
    if not download and not folder.is_dir():
        raise ValueError(
            f"{name} not found: looked for {folder}. Pass download=True (fdsl finetune "
            f"--download) to fetch it into {root}, or set data_root (--data-root) to the folder "
            f"that holds {dataset_class.base_folder}"
        )
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except RuntimeError as error:
        raise ValueError(f"{name} under {folder} is incomplete or corrupted ({error}): delete it "
                         "and pass download=True (--download) to fetch it again") from error
    return _Split(np.asarray(train.data), np.asarray(train.targets, dtype=np.int64),
                  np.asarray(test.data), np.asarray(test.targets, dtype=np.int64),
                  tuple(train.classes))


@register_downstream("cifar10")
def _load_cifar10(request: _Request) -> _Split:
    """CIFAR-10 in torchvision's format; the official 50k / 10k split."""
    from torchvision.datasets import CIFAR10

    return _load_cifar(CIFAR10, "cifar10", request)


@register_downstream("cifar100")
def _load_cifar100(request: _Request) -> _Split:
    """CIFAR-100 (fine labels) in torchvision's format; the official 50k / 10k split."""
    from torchvision.datasets import CIFAR100

    return _load_cifar(CIFAR100, "cifar100", request)


def _read_folder(
    folder: Path, class_names: list[str], image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    images, labels = [], []
    for label, class_name in enumerate(class_names):
        files = sorted(path for path in (folder / class_name).iterdir()
                       if path.suffix.lower() in _IMAGE_SUFFIXES)
        for path in files:
            with Image.open(path) as image:
                rgb = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                images.append(np.asarray(rgb, dtype=np.uint8))
            labels.append(label)
    if not images:
        raise ValueError(f"imagefolder found no images ({', '.join(_IMAGE_SUFFIXES)}) under "
                         f"{folder}")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _class_folders(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())


@register_downstream("imagefolder")
def _load_imagefolder(request: _Request) -> _Split:
    """ROOT/<class>/<image> (split by the seed) or ROOT/{train,test|val}/<class>/<image>.

    Images are read as RGB and resized to image_size at load so that they stack into a tensor.
    """
    root, image_size = request.root, request.image_size
    if root is None:
        raise ValueError("imagefolder needs data_root (--data-root): a folder of class folders")
    if not root.is_dir():
        raise ValueError(f"imagefolder root {root} is not a directory")
    test_folder = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if (root / "train").is_dir() and test_folder is not None:
        class_names = _class_folders(root / "train")
        if _class_folders(test_folder) != class_names:
            raise ValueError(f"imagefolder class folders differ between {root / 'train'} and "
                             f"{test_folder}")
        train_images, train_labels = _read_folder(root / "train", class_names, image_size)
        test_images, test_labels = _read_folder(test_folder, class_names, image_size)
        return _Split(train_images, train_labels, test_images, test_labels, tuple(class_names))
    class_names = _class_folders(root)
    if len(class_names) < 2:
        raise ValueError(f"imagefolder root {root} holds {len(class_names)} class folder(s): "
                         "at least 2 are needed")
    images, labels = _read_folder(root, class_names, image_size)
    train, test = _stratified_split(labels, request.seed)
    return _Split(images[train], labels[train], images[test], labels[test], tuple(class_names))


def create_downstream(
    name: str,
    *,
    seed: int = 0,
    shots: int | None = None,
    data_root: str | None = None,
    download: bool = False,
    image_size: int = 64,
) -> DownstreamData:
    """Load dataset `name` with its train / held-out split and an optional k-shot train subset.

    `seed` fixes the split where the dataset has none, and which images a few-shot run sees.
    `image_size` only applies to imagefolder, whose images have no common size.
    """
    if name not in _REGISTRY:
        raise ValueError(f"downstream dataset {name!r} is unknown: must be one of "
                         f"{', '.join(list_downstream())}")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
        raise ValueError(f"shots={shots!r} is out of range: must be an integer >= 1 or None")
    if image_size < 1:
        raise ValueError(f"image_size={image_size} is out of range: must be >= 1")
    root = None if data_root is None else Path(os.path.expanduser(data_root))
    split = _REGISTRY[name](_Request(root, download, seed, image_size))
    train_images, train_labels = split.train_images, split.train_labels
    if shots is not None:
        keep = _few_shot(train_labels, shots, seed, split.class_names)
        train_images, train_labels = train_images[keep], train_labels[keep]
    return DownstreamData(
        name=name,
        num_classes=len(split.class_names),
        class_names=split.class_names,
        train_images=torch.from_numpy(np.ascontiguousarray(train_images)),
        train_labels=torch.from_numpy(np.ascontiguousarray(train_labels)),
        test_images=torch.from_numpy(np.ascontiguousarray(split.test_images)),
        test_labels=torch.from_numpy(np.ascontiguousarray(split.test_labels)),
    )
