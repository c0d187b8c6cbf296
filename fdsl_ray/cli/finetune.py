"""`fdsl finetune`: score exported weights (or a scratch baseline) on a downstream dataset."""

from __future__ import annotations

import argparse

HELP = "fine-tune or linearly probe a pre-trained ViT (or a scratch one) on real data"

# CLI option -> FinetuneConfig field, for the options passed through unchanged when given.
_PASSTHROUGH = ("mode", "epochs", "batch_size", "optimizer", "lr", "weight_decay",
                "warmup_epochs", "label_smoothing", "image_size", "seed", "data_root", "device")


def _shots(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'all', got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    from fdsl_ray.train.downstream import list_downstream
    from fdsl_ray.train.finetune import DEVICES, MODES, OPTIMIZERS
    from fdsl_ray.train.models import list_models
    from fdsl_ray.train.recipes import list_recipes

    parser = subparsers.add_parser(
        "finetune",
        help=HELP,
        description="Fine-tune exported weights (model.safetensors from fdsl pre-training) or a "
        "randomly initialised ViT on a downstream dataset and print held-out top-1. Unset "
        "options take the recipe's values (--recipe, default cpu).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="exported model.safetensors or its directory "
                        "(a path or an s3://... URI)")
    source.add_argument("--scratch", action="store_true",
                        help="train the same recipe from a random init (the baseline)")
    parser.add_argument("--recipe", choices=list_recipes(), default="cpu",
                        help="a named recipe (fdsl_ray.train.recipes); default %(default)s")
    parser.add_argument("--dataset", help=f"one of {', '.join(list_downstream())} (default: "
                        "the recipe's)")
    parser.add_argument("--model", default=None,
                        help=f"a registered model ({', '.join(list_models())}); default: "
                        "cpu_small for --scratch, "
                        "the one recorded beside --checkpoint otherwise")
    parser.add_argument("--shots", type=_shots, default=argparse.SUPPRESS,
                        help="training images per class, or 'all' (default: the recipe's)")
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--lr", type=float, help="base lr for batch 512 (scaled by batch/512)")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--warmup-epochs", type=int)
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--image-size", type=int, help="input size (default: the model's)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--data-root", help="folder holding the dataset (cifar, imagefolder)")
    parser.add_argument("--download", action="store_true", default=None,
                        help="fetch the dataset into --data-root if it is missing")
    parser.add_argument("--device", choices=DEVICES)
    parser.add_argument("--json", dest="json_path", help="also write the result to this file")
    parser.set_defaults(func=run, accepts_overrides=False)


def _model(name: str | None, scratch: bool):
    from fdsl_ray.train.models import get_model

    if name is None:
        return get_model("cpu_small") if scratch else None
    return get_model(name)


def run(args: argparse.Namespace) -> int:
    from fdsl_ray import storage
    from fdsl_ray.train.finetune import finetune
    from fdsl_ray.train.recipes import get_recipe

    options = {key: getattr(args, key) for key in (*_PASSTHROUGH, "dataset", "download")
               if getattr(args, key) is not None}
    if "shots" in args:
        options["shots"] = args.shots
    config = get_recipe(args.recipe).finetune_config(**options)
    if args.json_path:
        storage.check_file_writable(args.json_path, "--json")
    model = _model(args.model, args.scratch)
    source = "scratch" if args.scratch else args.checkpoint
    shots = "all images" if config.shots is None else f"{config.shots} per class"
    print(f"fine-tuning ({config.mode}) {source} on {config.dataset} ({shots}), "
          f"{config.epochs} epochs, {config.optimizer} lr {config.effective_lr:.2e}", flush=True)

    def show(record: dict) -> None:
        print(f"epoch {record['epoch']:>4}/{config.epochs}  loss {record['loss']:.4f}  "
              f"train top-1 {record['train_top1']:5.1f} %  lr {record['lr']:.2e}  "
              f"{record['epoch_seconds']:.2f} s", flush=True)

    result = finetune(config, weights=None if args.scratch else args.checkpoint, model=model,
                      on_epoch=show)
    print(f"held-out top-1 {result.top1:.2f} % on {result.num_test} {config.dataset} images "
          f"(trained on {result.num_train}) in {result.compute_seconds:.1f} s")
    if args.json_path:
        storage.write_json(args.json_path, {
            "source": source, "config": config.to_dict(), "top1": result.top1,
            "compute_seconds": result.compute_seconds, "history": result.history})
    return 0
