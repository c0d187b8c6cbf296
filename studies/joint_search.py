"""Joint search: TPE over the generator, Delta, sigma, categories and images per category.

Multi-objective (downstream top-1 up, synthetic images down) with Optuna's TPE, seeded with
the papers' defaults, ASHA stopping weak pre-trainings early. For a GPU cluster; --smoke runs
a tiny version on a laptop. `optuna-dashboard sqlite:///runs/joint-search/optuna.db` follows it.
"""

from __future__ import annotations

from fdsl_ray.study.script import study_main
from fdsl_ray.study.spec import StudySpec
from fdsl_ray.train import FinetuneConfig, PretrainConfig

GENERATORS = ["onepfrac", "fractaldb", "rcdb", "exfractaldb", "visualatom", "ofdb-1k"]
PRETRAIN_IMAGES = 240_000 * 256


def _space(generators: list[str], min_categories: int, max_categories: int, min_images: int,
           max_images: int) -> dict:
    return {
        "generator": {"type": "categorical", "choices": generators},
        "delta": {"type": "float", "low": 0.01, "high": 0.4, "log": True},
        "sigma": {"type": "float", "low": 2.0, "high": 5.5},
        "num_categories": {"type": "int", "low": min_categories, "high": max_categories,
                           "log": True},
        "images_per_category": {"type": "int", "low": min_images, "high": max_images,
                                "log": True},
    }


def build_spec(smoke: bool, num_samples: int | None) -> StudySpec:
    if smoke:
        return StudySpec(
            name="joint-search-smoke",
            generator={"name": "onepfrac", "image_size": 16, "n_points": 300},
            space=_space(["onepfrac", "rcdb"], 2, 4, 1, 4),
            points_to_evaluate=[{"generator": "onepfrac", "delta": 0.1, "sigma": 3.5,
                                 "num_categories": 4, "images_per_category": 4}],
            sampler="tpe",
            num_samples=num_samples or 2,
            second_objective="synthetic_images",
            pretrain_images=32,
            pretrain={"model": "cpu_micro", "batch_size": 8, "lr": 0.05, "warmup_epochs": 0},
            finetune={"dataset": "digits", "epochs": 2, "warmup_epochs": 0, "shots": 2,
                      "batch_size": 8},
        )
    return StudySpec(
        name="joint-search",
        generator={"name": "onepfrac", "image_size": 224, "n_points": 100_000},
        space=_space(GENERATORS, 10, 1000, 10, 1000),
        points_to_evaluate=[
            {"generator": "onepfrac", "delta": 0.1, "sigma": 3.5, "num_categories": 1000,
             "images_per_category": 1000},
            {"generator": "fractaldb", "num_categories": 1000, "images_per_category": 1000},
        ],
        sampler="tpe",
        num_samples=num_samples or 64,
        second_objective="synthetic_images",
        asha=True,
        asha_grace_period=5,
        pretrain=PretrainConfig.gpu_reference().to_dict(),
        pretrain_images=PRETRAIN_IMAGES,
        finetune=FinetuneConfig.gpu_reference("cifar100", download=True).to_dict(),
    )


if __name__ == "__main__":
    study_main(build_spec, __doc__.splitlines()[0])
