"""The ``hybridwrap`` command: train, eval, backbones, summary."""

from __future__ import annotations

import argparse
import sys

from .errors import HybridWrapError


def run_user_command(fn) -> int:
    """Run ``fn``; a hybridwrap error becomes one clear line on stderr and exit status 2, not a traceback."""
    try:
        return fn() or 0
    except HybridWrapError as exc:
        print(f"hybridwrap: error: {exc}", file=sys.stderr)
        return 2


def _cmd_backbones(args) -> int:
    from .registry import list_backbones

    for name in list_backbones(include_timm=args.all, pattern=args.filter or ""):
        print(name)
    return 0


def _cmd_summary(args) -> int:
    from .model import wrap

    model = wrap(args.backbone, num_classes=args.num_classes, in_chans=args.in_chans, input_size=args.input_size)
    counts = {name: sum(p.numel() for p in params) for name, params in model.branch_parameters().items()}
    print(f"HybridNet around {args.backbone} at {model.layout.input_size[0]}x{model.layout.input_size[1]}")
    for lv_i, lv in enumerate(model.layout.levels):
        print(f"  level {lv_i}: {lv.module:<24} {lv.channels:>5} ch {lv.size[0]:>4}x{lv.size[1]:<4} "
              f"x{lv.factor[0]} switches={lv.switch_kind}")
    for name, n in counts.items():
        print(f"  {name:<10} {n / 1e6:8.3f} M parameters")
    return 0


def _cmd_eval(args) -> int:
    from .evaluate import evaluate_saved

    res = evaluate_saved(args.run, dataset=args.dataset, data_path=args.data_path, batch_size=args.batch_size,
                         image_size=args.image_size, max_images=args.max_images)
    for k, v in res.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .train import add_train_arguments

    parser = argparse.ArgumentParser(prog="hybridwrap", description="HybridNet around any timm-style CNN.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a HybridNet (defaults to the embedded digits quickstart)")
    add_train_arguments(p)

    p = sub.add_parser("eval", help="evaluate a trained run's student and teacher on a test set")
    p.add_argument("run", help="run directory (or its model/ folder)")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the run's own)")
    p.add_argument("--data-path")
    p.add_argument("--image-size", type=int)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-images", type=int)
    p.set_defaults(fn=_cmd_eval)

    p = sub.add_parser("backbones", help="list registered backbones")
    p.add_argument("--all", action="store_true", help="include every timm model")
    p.add_argument("--filter", help="glob pattern, e.g. 'resnet*'")
    p.set_defaults(fn=_cmd_backbones)

    p = sub.add_parser("summary", help="wrap a backbone and print its levels and parameter counts")
    p.add_argument("backbone")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--in-chans", type=int, default=3)
    p.add_argument("--input-size", type=int)
    p.set_defaults(fn=_cmd_summary)

    args = parser.parse_args(argv)
    if args.command == "train":
        from .train import main as train_main

        return train_main(argv[1:] if argv is not None else sys.argv[2:])
    return run_user_command(lambda: args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
