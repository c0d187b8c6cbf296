"""A study: the synthetic data to search over, the budget, the objective and the resources.

Everything is checked here, before a trial starts, so that a bad spec fails in a second with a
message that names the field rather than an hour later inside a trial.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fdsl_ray import storage
from fdsl_ray.data.stream import missing_labels
from fdsl_ray.formulas import generator_settings, list_names
from fdsl_ray.study import space as spaces
from fdsl_ray.study.layout import OBJECTIVE, OBJECTIVE_MODE, SECOND_OBJECTIVE_MODE
from fdsl_ray.train import PretrainConfig
from fdsl_ray.train.finetune import FinetuneConfig
from fdsl_ray.train.recipes import get_recipe
from fdsl_ray.train.schedule import epochs_for_iterations
from fdsl_ray.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_seed,
    config_from_dict,
)

SAMPLERS = ("tpe", "grid", "nsga2")
SECOND_OBJECTIVES = ("synthetic_images", "compute_seconds")
SEED_KINDS = ("finetune", "pretrain")
MAX_SEEDS = 100
# Ray Data's read and map tasks need a CPU beside the trial, the workers and the data actors;
# without it a stream stays backpressured forever on a small cluster.
DATA_TASK_CPUS = 1.0
AUGMENT_ACTOR_CPUS = 1.0  # as fdsl_ray.train.pretrain reserves for each timm augment actor
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _validate_generator(config: dict[str, Any]) -> None:
    """Build the generator's config (not the generator: that may search for a base system)."""
    generator_settings(**config)


@dataclass(frozen=True)
class StudySpec:
    """One study. `generator` is the base generator config (with "name"); `space` maps searched
    parameters to distributions (see fdsl_ray.study.space); `pretrain` / `finetune` are
    PretrainConfig / FinetuneConfig dicts (missing keys take the recipe's values).

    The objective is downstream top-1 (maximised); `second_objective` adds "synthetic_images"
    (categories x images per category) or "compute_seconds" (pre-training + fine-tuning),
    minimised, for a multi-objective search. `max_concurrent` None runs as many trials at once
    as the cluster can hold with all their nested Train and Data work. `storage` is the Optuna
    SQLAlchemy URL (None: sqlite in the study directory); `data_store` the Parquet store that
    trials share by config hash (None: each trial streams its images). `pretrain_images` fixes
    the pre-training budget in images seen instead of epochs (epochs = that / data set size,
    rounded up), so that data sets of different sizes train for comparable steps;
    `pretrain_iterations` fixes it in optimisation steps, the references' own unit (1p-frac:
    80,000 epochs x 3 steps = 240,000). `recipe` names the base of `pretrain` and `finetune`
    (fdsl_ray.train.recipes: "cpu", "1p-frac", ...): their keys change the recipe's values.

    `seeds` gives each configuration replicates: {"finetune": [0, 1, 2]} fine-tunes (and
    probes) every pre-trained model with those seeds, {"pretrain": [0, 1]} pre-trains it once
    per seed; a count k stands for seeds 0..k-1, and a missing kind keeps the recipe's one seed.
    One Tune (and Optuna) trial runs every replicate of its configuration and reports their
    mean as `top1`; the study's scratch baseline uses the same fine-tuning seeds.
    """

    name: str
    generator: dict[str, Any]
    space: dict[str, dict[str, Any]]
    sampler: str = "tpe"
    num_samples: int = 8
    max_concurrent: int | None = None
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    second_objective: str | None = None
    asha: bool = False
    asha_grace_period: int = 1
    pretrain: dict[str, Any] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)
    trial_cpus: float = 1.0
    max_failures: int = 1
    seed: int = 0
    storage: str | None = None
    data_store: str | None = None
    pretrain_images: int | None = None
    pretrain_iterations: int | None = None
    recipe: str = "cpu"
    seeds: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("generator", "space", "points_to_evaluate", "pretrain", "finetune", "seeds"):
            # The spec is what spec.json holds: JSON values only (tuples become lists).
            try:
                object.__setattr__(self, key, json.loads(json.dumps(getattr(self, key))))
            except (TypeError, ValueError) as error:
                raise ValueError(f"{key}={getattr(self, key)!r} must be JSON data: {error}") \
                    from None
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"name={self.name!r} must be 1-100 characters from letters, digits, "
                             "'_', '.' and '-', starting with a letter or digit")
        self._check_generator()
        check_choice("sampler", self.sampler, SAMPLERS)
        check_int("num_samples", self.num_samples, 1, 100_000)
        if self.max_concurrent is not None:
            check_int("max_concurrent", self.max_concurrent, 1, 10_000)
        if self.second_objective is not None:
            check_choice("second_objective", self.second_objective, SECOND_OBJECTIVES)
        check_bool("asha", self.asha)
        check_int("asha_grace_period", self.asha_grace_period, 1)
        check_float("trial_cpus", self.trial_cpus, 0, 1024, low_open=True)
        check_int("max_failures", self.max_failures, 0, 100)
        check_seed("seed", self.seed)
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in
                                         self.storage):
            raise ValueError(f"storage={self.storage!r} must be an SQLAlchemy URL such as "
                             "'sqlite:///optuna.db' or 'postgresql://user@host/db'")
        if self.data_store is not None and not isinstance(self.data_store, str):
            raise ValueError(f"data_store={self.data_store!r} must be a directory path or URI")
        get_recipe(self.recipe)
        self.finetune_config()
        self._check_seeds()
        PretrainConfig.from_dict({**get_recipe(self.recipe).pretrain, **self.pretrain})
        if (self.data_store is not None and PretrainConfig.from_dict(
                {**get_recipe(self.recipe).pretrain, **self.pretrain}).transform == "timm"):
            raise ValueError("data_store: transform='timm' augments the stream; a store would "
                             "repeat each epoch's augmentation: set data_store None")
        budgets = [name for name in ("pretrain_images", "pretrain_iterations")
                   if getattr(self, name) is not None]
        for name in budgets:
            check_int(name, getattr(self, name), 1)
        if budgets and "epochs" in self.space:
            raise ValueError(f"{budgets[0]} and a searched 'epochs' both set the budget: give "
                             "one of them")
        if len(budgets) > 1:
            raise ValueError("pretrain_images and pretrain_iterations both set the budget: give "
                             "one of them")
        self._check_space()
        if self.sampler == "grid" and self.num_samples > spaces.grid_size(self.space):
            raise ValueError(f"num_samples={self.num_samples} is out of range: the grid has "
                             f"{spaces.grid_size(self.space)} points")
        self._check_points()
        if self.asha and len(self.pretrain_seeds()) > 1:
            raise ValueError(f"asha=True with seeds.pretrain={self.seeds['pretrain']}: ASHA "
                             "ranks one pre-training's epochs; give one pre-training seed")
        if self.asha:
            epochs = min(self.pretrain_config(params).epochs for params in self.corner_params())
            check_int("asha_grace_period", self.asha_grace_period, 1, epochs)

    # --- parameter routing -------------------------------------------------------------------

    @property
    def generator_names(self) -> list[str]:
        """Every generator a trial may use: the base one, or the "generator" choices."""
        searched = self.space.get(spaces.GENERATOR_PARAM)
        return list(searched["choices"]) if searched else [self.generator["name"]]

    def generator_params(self) -> list[str]:
        keys = spaces.generator_keys(self.generator_names)
        return [name for name in self.space if name in keys]

    def pretrain_params(self) -> list[str]:
        generator_keys = spaces.generator_keys(self.generator_names)
        pretrain_keys = {item.name for item in fields(PretrainConfig)}
        return [name for name in self.space
                if name not in generator_keys and name in pretrain_keys]

    def generator_config(self, params: dict[str, Any]) -> dict[str, Any]:
        """The trial's generator config: base config, then sampled values, keeping only the
        keys the chosen generator has (a joint search samples delta even for fractaldb)."""
        name = params.get(spaces.GENERATOR_PARAM, self.generator["name"])
        keys = spaces.generator_keys([name])
        merged = {**self.generator, **{k: v for k, v in params.items() if k in keys}}
        return {"name": name, **{k: v for k, v in merged.items() if k in keys}}

    def pretrain_config(self, params: dict[str, Any]) -> PretrainConfig:
        """The trial's pre-training config. A data set smaller than `batch_size` trains on
        batches of the whole set (rounded down to a multiple of num_workers), so a scaling
        study can go down to a handful of images with one recipe."""
        searched = {name: params[name] for name in self.pretrain_params() if name in params}
        values = {**get_recipe(self.recipe).pretrain, **self.pretrain, **searched}
        images = self.synthetic_images(params)
        if self.pretrain_images is not None:
            values["epochs"] = max(math.ceil(self.pretrain_images / images),
                                   values.get("warmup_epochs", PretrainConfig.warmup_epochs) + 1)
        config = PretrainConfig.from_dict(values)
        if images < config.batch_size:
            per_worker = images // config.num_workers
            if config.uses_mixup and per_worker > 2:
                per_worker -= per_worker % 2  # mixup pairs images within a worker's batch
            batch = max(1, per_worker) * config.num_workers
            config = PretrainConfig.from_dict({**config.to_dict(), "batch_size": batch})
        if self.pretrain_iterations is not None:
            epochs = epochs_for_iterations(self.pretrain_iterations, images, config.batch_size,
                                           config.num_workers)
            config = PretrainConfig.from_dict(
                {**config.to_dict(), "epochs": max(epochs, config.warmup_epochs + 1)})
        return config

    def synthetic_images(self, params: dict[str, Any]) -> int:
        """Distinct synthetic images in a trial's data set (categories x images per category)."""
        settings = generator_settings(**self.generator_config(params))
        return settings.num_categories * settings.images_per_category

    def finetune_config(self) -> FinetuneConfig:
        return get_recipe(self.recipe).finetune_config(**self.finetune)

    def finetune_seeds(self) -> list[int]:
        """The fine-tuning seeds of every configuration (and of the scratch baseline)."""
        return list(self.seeds.get("finetune", [self.finetune_config().seed]))

    def pretrain_seeds(self) -> list[int]:
        """The pre-training seeds of every configuration: one pre-training run each."""
        default = {**get_recipe(self.recipe).pretrain, **self.pretrain}.get(
            "seed", PretrainConfig.seed)
        return list(self.seeds.get("pretrain", [default]))

    def pretrain_values(self, key: str, default: Any) -> list[Any]:
        """The values a pre-training key can take in this study (its bounds when searched)."""
        if key in self.pretrain_params():
            return spaces.bounds(self.space[key])
        return [self.pretrain.get(key, default)]

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """(metric, mode) pairs: top1 first, then the optional second objective."""
        pairs = [(OBJECTIVE, OBJECTIVE_MODE)]
        if self.second_objective:
            pairs.append((self.second_objective, SECOND_OBJECTIVE_MODE))
        return pairs

    # --- resources ---------------------------------------------------------------------------

    def trial_resources(self) -> dict[str, float]:
        """What one trial holds at its peak: the trial itself, its Train workers (their own
        placement group, invisible to Tune), its data actors and Ray Data's tasks."""
        need = {"CPU": 0.0, "GPU": 0.0}
        for params in self.corner_params():
            config = self.pretrain_config(params)
            cpus = (self.trial_cpus + config.num_workers * config.cpus_per_worker
                    + config.num_data_actors * config.cpus_per_data_actor + DATA_TASK_CPUS)
            if config.transform == "timm":
                cpus += config.num_augment_actors * AUGMENT_ACTOR_CPUS
            need["CPU"] = max(need["CPU"], cpus)
            need["GPU"] = max(need["GPU"], float(config.num_workers if config.use_gpu else 0))
        return need

    def node_labels(self) -> dict[str, str | None]:
        """pretrain.worker_resource and data_actor_resource (fdsl_ray.data.stream.node_label).
        A trial runs beside its Train workers, on a worker_resource node: it fine-tunes there,
        and its Train controller and the stream's executor run where it runs."""
        config = self.pretrain_config(self.corner_params()[0])
        return {"worker_resource": config.worker_resource,
                "data_actor_resource": config.data_actor_resource}

    def concurrency(self, cluster: dict[str, float]) -> int:
        """How many trials may run at once on `cluster` (ray.cluster_resources()); refuses a
        spec whose single trial the cluster cannot hold, since that would hang, not fail."""
        for name, label in self.node_labels().items():
            if missing_labels([label], cluster):
                raise ValueError(
                    f"pretrain.{name}={label!r}: no node of the cluster declares the resource "
                    f"{label!r}, so every trial would wait forever: declare it on the nodes "
                    f"that should run them (`ray start --resources '{{\"{label}\": 1}}'`) "
                    "or set it to null")
        need = self.trial_resources()
        limits = []
        for resource, amount in need.items():
            have = float(cluster.get(resource, 0.0))
            if amount > have:
                raise ValueError(
                    f"each trial needs {amount:g} {resource} (trial_cpus={self.trial_cpus:g}, "
                    f"pre-training workers, data actors and {DATA_TASK_CPUS:g} CPU for data "
                    f"tasks) but the cluster has {have:g}: lower pretrain.num_workers, "
                    "num_data_actors or cpus_per_*, or add nodes")
            if amount > 0:
                limits.append(math.floor(have / amount + 1e-9))
        fits = min(limits) if limits else 1
        wanted = self.max_concurrent if self.max_concurrent is not None else fits
        return max(1, min(wanted, fits, self.num_samples))

    # --- checks ------------------------------------------------------------------------------

    def _check_seeds(self) -> None:
        """Normalise `seeds` to {kind: [distinct seeds]}: a count k becomes 0..k-1."""
        if not isinstance(self.seeds, dict):
            raise ValueError(f"seeds={self.seeds!r} must be a dict such as "
                             "{'finetune': [0, 1, 2], 'pretrain': [0]}")
        unknown = sorted(set(self.seeds) - set(SEED_KINDS))
        if unknown:
            raise ValueError(f"seeds: unknown kind(s) {', '.join(unknown)}: allowed are "
                             f"{', '.join(SEED_KINDS)}")
        normal = {}
        for kind, value in self.seeds.items():
            if isinstance(value, int) and not isinstance(value, bool):
                check_int(f"seeds.{kind}", value, 1, MAX_SEEDS)
                value = list(range(value))
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEEDS:
                raise ValueError(f"seeds.{kind}={value!r} must be a count in [1, {MAX_SEEDS}] "
                                 f"or a list of 1 to {MAX_SEEDS} seeds")
            for seed in value:
                check_seed(f"seeds.{kind} entry", seed)
            if len(set(value)) != len(value):
                raise ValueError(f"seeds.{kind}={value} repeats a seed: a replicate must differ")
            normal[kind] = value
        object.__setattr__(self, "seeds", {kind: normal[kind] for kind in SEED_KINDS
                                           if kind in normal})

    def _check_generator(self) -> None:
        if not isinstance(self.generator, dict) or "name" not in self.generator:
            raise ValueError(f"generator={self.generator!r} must be a config dict with a "
                             f"'name' (one of {', '.join(list_names())})")
        _validate_generator(self.generator)

    def _check_space(self) -> None:
        if not isinstance(self.space, dict) or not self.space:
            raise ValueError("space is empty: give at least one parameter to search, e.g. "
                             "{'delta': {'type': 'float', 'low': 0.01, 'high': 0.4}}")
        for param, distribution in self.space.items():
            spaces.check_distribution(param, distribution)
        searched = self.space.get(spaces.GENERATOR_PARAM)
        if searched is not None:
            if searched["type"] != "categorical":
                raise ValueError("space.generator must be categorical (generator names)")
            for name in searched["choices"]:
                generator_settings(name)
        known = set(self.generator_params()) | set(self.pretrain_params()) | {
            spaces.GENERATOR_PARAM}
        unknown = sorted(set(self.space) - known)
        if unknown:
            pretrain_keys = sorted(item.name for item in fields(PretrainConfig))
            raise ValueError(
                f"space: unknown parameter(s) {', '.join(unknown)}: allowed are 'generator', "
                f"the keys of {', '.join(self.generator_names)} "
                f"({', '.join(sorted(spaces.generator_keys(self.generator_names)))}) and "
                f"pre-training keys ({', '.join(pretrain_keys)})")
        for params in self.corner_params():
            self._check_params(params, "space")
        smallest = {key: min(self._values(key)) for key in ("num_categories",
                                                            "images_per_category")}
        workers = max(self.pretrain_values("num_workers", PretrainConfig().num_workers))
        if smallest["num_categories"] * smallest["images_per_category"] < workers:
            raise ValueError(f"space: {smallest} gives fewer images than num_workers={workers}: "
                             "every pre-training worker needs at least one image")

    def _values(self, key: str) -> list[Any]:
        if key in self.space:
            return spaces.bounds(self.space[key])
        return [getattr(generator_settings(**self.generator), key)]

    def corner_params(self) -> list[dict[str, Any]]:
        """One assignment per extreme value of each parameter, others at their first extreme:
        enough to find a bound the generator or pre-training config rejects."""
        first = {name: spaces.bounds(spec)[0] for name, spec in self.space.items()}
        corners = [first]
        for name, spec in self.space.items():
            corners += [{**first, name: value} for value in spaces.bounds(spec)[1:]]
        return corners

    def _check_params(self, params: dict[str, Any], where: str) -> None:
        names = [params.get(spaces.GENERATOR_PARAM, self.generator["name"])]
        if spaces.GENERATOR_PARAM in self.space and spaces.GENERATOR_PARAM not in params:
            names = self.generator_names
        for name in names:
            config = self.generator_config({**params, spaces.GENERATOR_PARAM: name})
            try:
                _validate_generator(config)
            except ValueError as error:
                raise ValueError(f"{where}: {params} gives an invalid {name} config: {error}") \
                    from None
        try:
            self.pretrain_config(params)
        except ValueError as error:
            raise ValueError(f"{where}: {params} gives an invalid pretrain config: {error}") \
                from None

    def _check_points(self) -> None:
        if not isinstance(self.points_to_evaluate, (list, tuple)):
            raise ValueError(f"points_to_evaluate={self.points_to_evaluate!r} must be a list "
                             "of {parameter: value} dicts")
        for index, point in enumerate(self.points_to_evaluate):
            where = f"points_to_evaluate[{index}]"
            if not isinstance(point, dict) or not point:
                raise ValueError(f"{where}={point!r} must be a non-empty dict")
            unknown = sorted(set(point) - set(self.space))
            if unknown:
                raise ValueError(f"{where}: {', '.join(unknown)} not in the space "
                                 f"({', '.join(self.space)})")
            for name, value in point.items():
                if not spaces.contains(self.space[name], value):
                    raise ValueError(f"{where}: {name}={value!r} is outside the space "
                                     f"{self.space[name]}")
            self._check_params(point, where)

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        return config_from_dict(cls, data, "study")

    def save(self, path: str | Path) -> None:
        """Write spec.json whole (fdsl_ray.storage)."""
        storage.write_json(path, self.to_dict(), sort_keys=True)

    @classmethod
    def load(cls, path: str | Path) -> StudySpec:
        return cls.from_dict(json.loads(Path(path).read_text()))
