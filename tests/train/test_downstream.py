"""Downstream registry: shapes, seed-fixed disjoint splits, k-shot subsets and error messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fdsl_ray.train.downstream import create_downstream, list_downstream


def _rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_registry_names():
    assert list_downstream() == ["cifar10", "cifar100", "digits", "imagefolder"]


def test_digits_shapes_dtypes_and_scaling():
    data = create_downstream("digits", seed=0)
    assert data.num_classes == 10
    assert data.class_names == tuple(str(digit) for digit in range(10))
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape[1:] == (8, 8)
    assert data.train_labels.dtype == torch.int64
    assert len(data.train_images) + len(data.test_images) == 1797
    assert int(data.train_images.max()) == 255 and int(data.train_images.min()) == 0
    assert set(data.test_labels.tolist()) == set(range(10))


def test_digits_split_is_fixed_by_seed_and_disjoint():
    first = create_downstream("digits", seed=1)
    again = create_downstream("digits", seed=1)
    other = create_downstream("digits", seed=2)
    assert torch.equal(first.train_images, again.train_images)
    assert torch.equal(first.test_labels, again.test_labels)
    assert not torch.equal(first.test_images, other.test_images)
    # The 1,797 digits images are pairwise distinct, so disjoint bytes mean disjoint images.
    assert len(_rows(first.train_images) | _rows(first.test_images)) == 1797


def test_digits_split_is_stratified():
    data = create_downstream("digits", seed=0)
    train_counts = np.bincount(data.train_labels.numpy(), minlength=10)
    test_counts = np.bincount(data.test_labels.numpy(), minlength=10)
    assert np.all(np.abs(train_counts - test_counts) <= 1)


def test_few_shot_keeps_k_per_class_from_train_split():
    full = create_downstream("digits", seed=4)
    few = create_downstream("digits", seed=4, shots=10)
    assert np.bincount(few.train_labels.numpy(), minlength=10).tolist() == [10] * 10
    assert torch.equal(few.test_images, full.test_images)
    assert _rows(few.train_images) <= _rows(full.train_images)
    assert torch.equal(few.train_images, create_downstream("digits", seed=4, shots=10).train_images)
    other = create_downstream("digits", seed=5, shots=10)
    assert not torch.equal(few.train_images, other.train_images)


def test_too_many_shots_names_the_class():
    with pytest.raises(ValueError, match=r"shots=500 is out of range: class '0' has only"):
        create_downstream("digits", shots=500)


@pytest.mark.parametrize("shots", [0, -1, 2.5, True])
def test_bad_shots(shots):
    with pytest.raises(ValueError, match="shots=.* is out of range"):
        create_downstream("digits", shots=shots)


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="'mnist' is unknown: must be one of cifar10, cifar100, "
                                         "digits, imagefolder"):
        create_downstream("mnist")


@pytest.mark.parametrize(("name", "folder"), [("cifar10", "cifar-10-batches-py"),
                                              ("cifar100", "cifar-100-python")])
def test_missing_cifar_says_where_it_looked_and_how_to_download(tmp_path, name, folder):
    with pytest.raises(ValueError) as excinfo:
        create_downstream(name, data_root=str(tmp_path))
    message = str(excinfo.value)
    assert f"looked for {tmp_path / folder}" in message
    assert "download=True" in message and "--download" in message


def test_corrupted_cifar_folder_is_reported(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(ValueError, match="incomplete or corrupted"):
        create_downstream("cifar10", data_root=str(tmp_path))


def _write_images(folder, classes, per_class, size=(10, 7)):
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 256, size=(*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{index}.png")


def test_imagefolder_split_by_seed(tmp_path):
    _write_images(tmp_path, ["cat", "dog", "emu"], per_class=4)
    data = create_downstream("imagefolder", data_root=str(tmp_path), image_size=12, seed=0)
    assert data.class_names == ("cat", "dog", "emu")
    assert data.train_images.shape == (6, 12, 12, 3)
    assert data.test_images.shape == (6, 12, 12, 3)
    assert _rows(data.train_images).isdisjoint(_rows(data.test_images))


def test_imagefolder_with_train_and_val_folders(tmp_path):
    _write_images(tmp_path / "train", ["a", "b"], per_class=3)
    _write_images(tmp_path / "val", ["a", "b"], per_class=2)
    data = create_downstream("imagefolder", data_root=str(tmp_path), image_size=8, shots=2)
    assert data.train_labels.tolist() == [0, 0, 1, 1]
    assert data.test_labels.tolist() == [0, 0, 1, 1]


def test_imagefolder_needs_a_root():
    with pytest.raises(ValueError, match="imagefolder needs data_root"):
        create_downstream("imagefolder")
