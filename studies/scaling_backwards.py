"""Scaling backwards: how few categories and images per category does pre-training need?

A grid over num_categories x images_per_category in {1, 10, 100, 1000} (1p-frac, Delta 0.1),
scored on CIFAR-100, with the synthetic image count as a second objective. Every size trains
the 1p-frac reference recipe for the reference's 240,000 iterations (80,000 epochs x 3 steps
of 256 over its 1,000 images), on the same fixed images every epoch (`pretrain_iterations`
turns that into epochs over each size; a set smaller than a batch trains on whole-set
batches). For a GPU cluster; --smoke runs a tiny version on a laptop.

--cpu runs it at the quickstart's scale on a 2-core machine: images per category {1, 10,
100} x categories {10, 100} at equal steps (CPU_ITERATIONS), 3 fine-tuning seeds each and the
scratch baseline, against the paper's claim that fewer images can pre-train as well or better.
"""

from __future__ import annotations

from fdsl_ray.study.script import CPU_GENERATOR, CPU_PRETRAIN, cpu_study, study_main
from fdsl_ray.study.spec import StudySpec

SIZES = [1, 10, 100, 1000]
REFERENCE_ITERATIONS = 80_000 * 3  # 1p-frac train/pre-train.sh:22, 1,000 images // 256
CPU_CATEGORIES = [10, 100]
CPU_IMAGES = [1, 10, 100]
CPU_ITERATIONS = 450  # the quickstart's 30 epochs of 1,000 images in batches of 64


def build_spec(smoke: bool, num_samples: int | None, cpu: bool = False) -> StudySpec:
    if smoke:
        return StudySpec(
            name="scaling-backwards-smoke",
            generator={"name": "onepfrac", "image_size": 16, "n_points": 300, "delta": 0.1},
            space={"num_categories": {"type": "categorical", "choices": [1, 4]},
                   "images_per_category": {"type": "categorical", "choices": [2]}},
            sampler="grid",
            num_samples=num_samples or 2,
            second_objective="synthetic_images",
            pretrain_iterations=2,
            pretrain={"model": "cpu_micro", "batch_size": 8, "lr": 0.05, "warmup_epochs": 0},
            finetune={"dataset": "digits", "epochs": 2, "warmup_epochs": 0, "shots": 2,
                      "batch_size": 8},
        )
    if cpu:
        return cpu_study(
            "scaling-backwards-cpu",
            {"num_categories": {"type": "categorical", "choices": CPU_CATEGORIES},
             "images_per_category": {"type": "categorical", "choices": CPU_IMAGES}},
            num_samples or len(CPU_CATEGORIES) * len(CPU_IMAGES),
            generator={**CPU_GENERATOR, "delta": 0.1}, second_objective="synthetic_images",
            pretrain_iterations=CPU_ITERATIONS,
            # One warm-up epoch, so that the largest set (10,000 images, 157 steps an epoch)
            # needs no more than the 3 epochs that CPU_ITERATIONS asks of it.
            pretrain={**{key: value for key, value in CPU_PRETRAIN.items() if key != "epochs"},
                      "warmup_epochs": 1})
    return StudySpec(
        name="scaling-backwards",
        recipe="1p-frac",
        generator={"name": "onepfrac", "image_size": 512, "n_points": 100_000, "delta": 0.1},
        space={"num_categories": {"type": "categorical", "choices": SIZES},
               "images_per_category": {"type": "categorical", "choices": SIZES}},
        sampler="grid",
        num_samples=num_samples or len(SIZES) ** 2,
        second_objective="synthetic_images",
        pretrain_iterations=REFERENCE_ITERATIONS,
        # One image cannot be mixed with another: mixup and cutmix are off for every size.
        pretrain={"mixup_alpha": 0.0, "cutmix_alpha": 0.0},
        finetune={"download": True},
    )


if __name__ == "__main__":
    study_main(build_spec, __doc__.splitlines()[0])
