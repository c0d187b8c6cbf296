"""What a training step minimises and what an epoch reports, shared by pre-training (DDP over
Ray Train workers) and fine-tuning (one process). Imports only torch, so that a DDP test can
run it in bare processes."""

from __future__ import annotations

import torch


def training_loss(logits: torch.Tensor, labels: torch.Tensor, mixed: torch.Tensor | None,
                  label_smoothing: float) -> torch.Tensor:
    """One training loss for pre-training and fine-tuning, as 1p-frac train/main.py:204-213
    picks it: timm's SoftTargetCrossEntropy on Mixup's soft targets (which carry the
    smoothing), else smoothed cross entropy (torch's, the numbers of timm's
    LabelSmoothingCrossEntropy). In float32 whatever the autocast dtype of `logits`."""
    from timm.loss import SoftTargetCrossEntropy

    if mixed is not None:
        return SoftTargetCrossEntropy()(logits.float(), mixed)
    return torch.nn.functional.cross_entropy(logits.float(), labels,
                                             label_smoothing=label_smoothing)


def epoch_means(
    loss_sum: torch.Tensor, correct: torch.Tensor, steps: int, batch_size: int
) -> tuple[float, float]:
    """(mean step loss, top-1 in %) of an epoch over every DDP rank, each rank having summed
    its `steps` losses and counted `correct` of its steps x `batch_size` images. Every rank
    gets the same numbers, so a nan or inf on any rank stops all of them together."""
    totals = torch.stack([loss_sum.detach().double(), correct.double()])
    ranks = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(totals)
        ranks = torch.distributed.get_world_size()
    loss, hits = totals.tolist()
    return loss / (steps * ranks), 100.0 * hits / (steps * batch_size * ranks)
