"""A DDP rank for tests/train/test_pretrain_config.py, in a module that imports only torch
(a spawned process imports it to find its function)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.distributed as dist

from fdsl_ray.train.loss import epoch_means


def rank_means(rank: int, directory: str, sums: list[float], hits: list[int]) -> None:
    """Rank `rank` of 2 writes epoch_means of its own loss sum and hit count (2 steps of 8)."""
    dist.init_process_group("gloo", init_method=f"file://{directory}/init", rank=rank,
                            world_size=len(sums))
    means = epoch_means(torch.tensor(sums[rank]), torch.tensor(hits[rank]), 2, 8)
    dist.destroy_process_group()
    Path(directory, f"rank{rank}.json").write_text(json.dumps(means))
