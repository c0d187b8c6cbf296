"""Delta sweep at paper scale: 1p-frac with Delta in {0.01, 0.05, 0.1, 0.2, 0.4}.

ViT-Tiny at 224 px pre-trained with the 1p-frac reference recipe on one GPU per trial (fed by
CPU data actors), then fine-tuned on CIFAR-100 with the reference recipe. Meant for a GPU
cluster (cluster.yaml):

    ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python studies/delta_sweep.py --address auto --storage /mnt/fdsl/runs
"""

from __future__ import annotations

from fdsl_ray.study.script import study_main
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.train import FinetuneConfig, PretrainConfig

DELTAS = [0.01, 0.05, 0.1, 0.2, 0.4]
# The reference ran ~240k iterations of 256 images.
PRETRAIN_IMAGES = 240_000 * 256


def build_spec(smoke: bool, num_samples: int | None) -> StudySpec:
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
    return StudySpec(
        name="delta-sweep",
        generator={"name": "onepfrac", "image_size": 224, "n_points": 100_000,
                   "num_categories": 1000, "images_per_category": 1000},
        space={"delta": {"type": "categorical", "choices": DELTAS}},
        sampler="grid",
        num_samples=num_samples or len(DELTAS),
        pretrain=PretrainConfig.gpu_reference().to_dict(),
        pretrain_images=PRETRAIN_IMAGES,
        finetune=FinetuneConfig.gpu_reference("cifar100", download=True).to_dict(),
    )


if __name__ == "__main__":
    study_main(build_spec, __doc__.splitlines()[0])
