"""The per-epoch local shuffle of the pre-training loop (torch only, no Ray)."""

from __future__ import annotations

import torch

from fdsl_ray.train.pretrain import _shuffled


def _batches(start: int, count: int, size: int):
    for index in range(count):
        ids = torch.arange(start + index * size, start + (index + 1) * size)
        yield {"label": ids, "image": ids[:, None].repeat(1, 3)}


def _draw(seed: int, count: int = 10, buffer: int = 20):
    return [batch["label"].tolist() for batch in
            _shuffled(_batches(0, count, 4), buffer, torch.Generator().manual_seed(seed))]


def test_an_epoch_leaves_as_many_batches_as_came_in_each_row_once():
    drawn = _draw(0)
    assert len(drawn) == 10 and all(len(batch) == 4 for batch in drawn)
    assert sorted(row for batch in drawn for row in batch) == list(range(40))
    assert drawn != [list(range(4 * index, 4 * index + 4)) for index in range(10)]


def test_the_draws_depend_on_the_seed_alone_and_keep_rows_together():
    assert _draw(3) == _draw(3) != _draw(4)
    for batch in _shuffled(_batches(0, 6, 4), 8, torch.Generator().manual_seed(1)):
        assert torch.equal(batch["image"], batch["label"][:, None].repeat(1, 3))


def test_a_buffer_larger_than_the_epoch_shuffles_the_whole_epoch():
    drawn = _draw(0, count=3, buffer=1000)
    assert len(drawn) == 3 and sorted(sum(drawn, [])) == list(range(12))
