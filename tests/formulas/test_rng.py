"""Counter-based keys: the batch form is the per-image fold, whatever the ids."""

from __future__ import annotations

import numpy as np
import pytest

from fdsl_ray.formulas.rng import key_for, keys_for


def test_batch_keys_are_the_per_image_fold():
    rng = np.random.default_rng(0)
    labels, instances = rng.integers(0, 2**40, 500), rng.integers(0, 2**62, 500)
    keys = keys_for(123, 0xDEADBEEF, labels, instances)
    assert keys.dtype == np.uint64
    expected = [key_for(123, 0xDEADBEEF, label, instance)
                for label, instance in zip(labels.tolist(), instances.tolist(), strict=True)]
    assert keys.tolist() == expected
    assert keys_for(1, 2, np.array([], np.int64), np.array([], np.int64)).size == 0


def test_labels_and_instances_must_pair_up():
    with pytest.raises(ValueError, match="3 labels and 2 instances must pair up"):
        keys_for(1, 2, np.arange(3), np.arange(2))
