"""`fdsl pretrain NAME [--key value ...]`: pre-train a ViT on a generator's images with Ray Train.

Free `--key value` pairs configure the generator (e.g. `--delta 0.1 --num-categories 100
--image-size 32`); the options below configure training. The same command run again resumes
the run (or prints the finished result), because the run name is derived from both configs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace

from fdsl_ray.cli._overrides import parse_overrides, parse_value

HELP = "pre-train a ViT on synthetic images with Ray Train (DDP) and export the weights"

# CLI option -> PretrainConfig field, for the options passed through unchanged when given.
_PASSTHROUGH = {
    "model": "model", "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
    "warmup_epochs": "warmup_epochs", "workers": "num_workers",
    "cpus_per_worker": "cpus_per_worker", "data_actors": "num_data_actors",
    "cpus_per_data_actor": "cpus_per_data_actor", "train_seed": "seed",
    "max_failures": "max_failures",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.train.models import list_models
    from fdsl_ray.train.recipes import list_recipes

    parser = subparsers.add_parser(
        "pretrain",
        allow_abbrev=False,  # a generator key must never be taken for a training option
        help=HELP,
        description="Pre-train a ViT on the images of generator NAME, configured by free "
        "--key value options (e.g. --delta 0.1 --num-categories 100 --image-size 32), and "
        "export model.safetensors for `fdsl finetune --checkpoint`. Unset options take the "
        "recipe's values, and generator keys the recipe asks for (e.g. image_size 512) apply "
        "unless given.",
    )
    parser.add_argument("generator", metavar="NAME", help="generator name (see `fdsl generate`)")
    parser.add_argument("--recipe", choices=list_recipes(), default="cpu",
                        help="a named recipe (fdsl_ray.train.recipes); default %(default)s")
    parser.add_argument("--model", help=f"a registered model ({', '.join(list_models())})")
    schedule = parser.add_mutually_exclusive_group()
    schedule.add_argument("--epochs", type=int, help="passes over the data set")
    schedule.add_argument("--iterations", type=int, help="optimisation steps instead of epochs "
                          "(epochs = ceil(iterations / steps per epoch))")
    parser.add_argument("--batch-size", type=int, help="global batch, split over the workers")
    parser.add_argument("--lr", type=float, help="base lr for batch 512 (scaled by batch/512)")
    parser.add_argument("--warmup-epochs", type=int)
    parser.add_argument("--workers", type=int, help="Ray Train workers (DDP processes)")
    parser.add_argument("--cpus-per-worker", type=float)
    parser.add_argument("--data-actors", type=int, help="Ray Data actors rendering the stream")
    parser.add_argument("--cpus-per-data-actor", type=float)
    parser.add_argument("--train-seed", type=int,
                        help="seed of init and augmentation (--seed is the generator's)")
    parser.add_argument("--max-failures", type=int, help="worker failures to recover from")
    parser.add_argument("--gpu", action="store_true", default=None, help="one GPU per worker")
    parser.add_argument("--fresh-instances", action="store_true", default=None,
                        help="render new instances of every category each epoch (default: the "
                        "fixed set, instance ids 0..images_per_category-1 every epoch)")
    parser.add_argument("--store-root", help="write the images once under this folder and read "
                        "them back each epoch (default: stream them, nothing on disk)")
    parser.add_argument("--out", default="runs/pretrain",
                        help="where runs go (checkpoints, export): a directory or an object-store "
                             "URI such as s3://bucket/runs; default %(default)s")
    parser.add_argument("--run-name", help="default: NAME plus a hash of both configs")
    parser.add_argument("--json", dest="json_path", help="also write the result to this file")
    parser.set_defaults(func=run, accepts_overrides=True)


def _config(args: argparse.Namespace, generator: dict):
    from fdsl_ray.train.recipes import get_recipe
    from fdsl_ray.train.schedule import epochs_for_iterations

    base = get_recipe(args.recipe).pretrain_config()
    changes = {field: getattr(args, option) for option, field in _PASSTHROUGH.items()
               if getattr(args, option) is not None}
    if args.gpu is not None:
        changes["use_gpu"] = True
    if args.fresh_instances is not None:
        changes["fresh_instances"] = True
    config = replace(base, **changes)
    if args.iterations is not None:
        images = generator["num_categories"] * generator["images_per_category"]
        epochs = epochs_for_iterations(args.iterations, images, config.batch_size,
                                       config.num_workers)
        config = replace(config, epochs=epochs)
    return config


def _option_value(value: object) -> str:
    """A value as `parse_value` reads it back: JSON, except strings that stay strings."""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    return json.dumps(value, separators=(",", ":"))


def pretrain_command(generator: dict, pretrain: dict, recipe: str) -> tuple[list[str], dict]:
    """The `fdsl pretrain` argv that rebuilds this generator config and pre-training config
    (the inverse of `run`'s parsing), and the pre-training fields that differ from the recipe
    but that no option sets, with their values."""
    from fdsl_ray.train.recipes import get_recipe

    argv = ["fdsl", "pretrain", generator["name"], "--recipe", recipe]
    for key, value in generator.items():
        if key != "name":
            argv += [f"--{key.replace('_', '-')}", _option_value(value)]
    base = json.loads(json.dumps(get_recipe(recipe).pretrain_config().to_dict()))
    wanted = json.loads(json.dumps(pretrain))
    options = {field: option for option, field in _PASSTHROUGH.items()}
    flags = {"use_gpu": "--gpu", "fresh_instances": "--fresh-instances"}
    unset = {}
    for field, value in wanted.items():
        if base.get(field) == value:
            continue
        if field in options:
            argv += [f"--{options[field].replace('_', '-')}", _option_value(value)]
        elif field in flags and value is True:
            argv.append(flags[field])
        else:
            unset[field] = value
    return argv, unset


def _default_run_name(generator: dict, config) -> str:
    identity = json.dumps({"generator": generator, "config": config.to_dict()}, sort_keys=True)
    return f"{generator['name']}-{hashlib.sha256(identity.encode()).hexdigest()[:10]}"


def _progress_callback(epochs: int):
    import ray.train

    class EpochLine(ray.train.UserCallback):
        """Prints one line per epoch (from the Train controller, relayed to this terminal)."""

        def after_report(self, run_context, metrics, checkpoint) -> None:
            record = metrics[0]
            print(f"epoch {record['epoch']:>4}/{epochs}  loss {record['loss']:.4f}  "
                  f"train top-1 {record['train_top1']:5.1f} %  {record['images_per_s']:8.1f} "
                  f"img/s  stall {1000 * record['stall_seconds_per_step']:6.1f} ms/step  "
                  f"{record['epoch_seconds']:.1f} s", flush=True)

    return EpochLine()


def run(args: argparse.Namespace) -> int:
    import ray

    from fdsl_ray import storage
    from fdsl_ray.cluster import start_ray
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.train.pretrain import check_pretrain, pretrain, required_cpus
    from fdsl_ray.train.recipes import get_recipe

    asked = {key: value for key, value in get_recipe(args.recipe).generator.items()
             if key != "name"}
    generator = create_generator(args.generator,
                                 **{**asked, **parse_overrides(args.overrides)}).config
    config = _config(args, generator)
    run_name = args.run_name or _default_run_name(generator, config)
    # Everything that needs no cluster is refused before Ray starts.
    check_pretrain(generator, config, storage_path=args.out, run_name=run_name,
                   store_root=args.store_root)
    if args.json_path:
        storage.check_file_writable(args.json_path, "--json")
    # RAY_ADDRESS's cluster, or a local Ray with the logical CPUs the run reserves.
    start_ray(cpus=required_cpus(config, streaming=args.store_root is None),
              configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    images = generator["num_categories"] * generator["images_per_category"]
    print(f"pre-training {config.model} on {generator['name']} ({generator['num_categories']} "
          f"categories, {images} images per epoch) for {config.epochs} epochs, batch "
          f"{config.batch_size} on {config.num_workers} worker(s), lr {config.effective_lr:.2e}; "
          f"run {args.out}/{run_name}", flush=True)
    result = pretrain(generator, config, storage_path=args.out, run_name=run_name,
                      callbacks=[_progress_callback(config.epochs)], store_root=args.store_root)
    last = result.history[-1]
    print(f"weights {result.weights_path}\nfinal loss {last['loss']:.4f}, train top-1 "
          f"{last['train_top1']:.1f} %, {last['images_per_s']:.1f} img/s; compute "
          f"{result.compute_seconds:.1f} s, wall {result.wall_seconds:.1f} s")
    if args.json_path:
        storage.write_json(args.json_path, {"generator": generator, "config": config.to_dict(),
                                            "run_name": run_name, **result.__dict__})
    return 0
