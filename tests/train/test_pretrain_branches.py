"""Pre-training paths no other test runs: images from a Parquet store (`store_root`), and the
timm Mixup/CutMix branch of the loop."""

from __future__ import annotations

import math

import pytest

from fdsl_ray.train import PretrainConfig, pretrain

GENERATOR = dict(name="onepfrac", image_size=16, n_points=300, num_categories=4,
                 images_per_category=4)


@pytest.mark.slow
def test_a_store_backed_run_with_mixup_and_cutmix(ray_session, tmp_path):
    config = PretrainConfig(model="cpu_micro", epochs=2, batch_size=8, lr=0.05, warmup_epochs=0,
                            num_workers=1, max_failures=0, mixup_alpha=0.8, cutmix_alpha=1.0)
    assert config.uses_mixup
    stores = tmp_path / "stores"
    result = pretrain(GENERATOR, config, storage_path=str(tmp_path / "runs"), run_name="mixed",
                      store_root=str(stores))
    # The store root also holds the cached category table (ROOT/tables/).
    assert len([path for path in stores.iterdir() if (path / "manifest.json").is_file()]) == 1
    assert [record["epoch"] for record in result.history] == [1, 2]
    assert all(math.isfinite(record["loss"]) for record in result.history)
    assert result.num_classes == 4
