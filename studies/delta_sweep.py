"""Delta sweep at paper scale: 1p-frac with Delta in {0.01, 0.05, 0.1, 0.2, 0.4}.

The 1p-frac protocol unchanged (recipe "1p-frac", fdsl_ray.train.recipes): 1,000 categories of
one image each, rendered at 512 px and cropped to 224 by timm's create_transform, the same
images for 80,000 epochs of 3 steps (240,000 iterations of 256), ViT-Tiny on one GPU per trial
fed by CPU render and augment actors; then fine-tuned on CIFAR-100 with the reference recipe.
Meant for a GPU cluster (cluster.yaml):

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python studies/delta_sweep.py --address auto --storage /mnt/fdsl/runs

--cpu runs the sweep at the quickstart's scale on a 2-core machine, Delta in {0.0, 0.01, 0.05,
0.1, 0.2, 0.4} for 24 epochs (360 steps) with 3 fine-tuning seeds each and the scratch
baseline: a shape to compare with the 1p-frac README's CIFAR-100 curve (19.9 / 83.0 / 84.2 /
83.4 at 0.01 / 0.05 / 0.1 / 0.2), not its level.
"""

from __future__ import annotations

from fdsl_ray.study.script import CPU_PRETRAIN, cpu_study, study_main
from fdsl_ray.study.spec import StudySpec

DELTAS = [0.01, 0.05, 0.1, 0.2, 0.4]
CPU_DELTAS = [0.0, *DELTAS]
CPU_EPOCHS = 24


def build_spec(smoke: bool, num_samples: int | None, cpu: bool = False) -> StudySpec:
    if smoke:
        return StudySpec(
            name="delta-sweep-smoke",
            generator={"name": "onepfrac", "image_size": 16, "n_points": 300,
                       "num_categories": 4, "images_per_category": 4},
            space={"delta": {"type": "categorical", "choices": DELTAS[:2]}},
            sampler="grid",
            num_samples=num_samples or 2,
            pretrain={"model": "cpu_micro", "epochs": 2, "batch_size": 8, "lr": 0.05,
                      "warmup_epochs": 0},
            finetune={"dataset": "digits", "epochs": 2, "warmup_epochs": 0, "shots": 2,
                      "batch_size": 8},
        )
    if cpu:
        # Fewer epochs than the quickstart (24 against 30), so that six trials fit in 30 minutes.
        return cpu_study("delta-sweep-cpu",
                         {"delta": {"type": "categorical", "choices": CPU_DELTAS}},
                         num_samples or len(CPU_DELTAS),
                         pretrain={**CPU_PRETRAIN, "epochs": CPU_EPOCHS, "warmup_epochs": 3})
    return StudySpec(
        name="delta-sweep",
        recipe="1p-frac",
        generator={"name": "1p-frac", "image_size": 512},  # the preset, kept at 512 px
        space={"delta": {"type": "categorical", "choices": DELTAS}},
        sampler="grid",
        num_samples=num_samples or len(DELTAS),
        finetune={"download": True},
    )


if __name__ == "__main__":
    study_main(build_spec, __doc__.splitlines()[0])
