"""The ``hybridwrap`` command: train, config, tune, eval, predict, push, export, card, visualize, backbones, summary."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

from . import budget, logs
from .command import run_user_command
from .config import DECODERS, to_dict
from .errors import CheckpointError, ConfigError, DataError, Interrupted
from .launch import main as launch_main
from .train_cli import add_train_arguments, config_from_args
from .train_cli import main as train_main


def _cmd_backbones(args) -> int:
    from .registry import list_backbones

    for name in list_backbones(include_timm=args.all, pattern=args.filter or ""):
        print(name)
    return 0


def _cmd_summary(args) -> int:
    from .builder import wrap

    model = wrap(args.backbone, num_classes=args.num_classes, in_chans=args.in_chans, input_size=args.input_size,
                 decoder=args.decoder)
    counts = {name: sum(p.numel() for p in params) for name, params in model.branch_parameters().items()}
    print(f"HybridNet around {args.backbone}, measured at {model.layout.input_size[0]}x{model.layout.input_size[1]} "
          f"(it takes other sizes too), decoder {model.config.decoder} (D_c {model.config.decoder_c_mode}, "
          f"D_u {model.config.decoder_u_mode}), {len(model.pair_levels)} intermediate pairs per branch")
    for lv_i, lv in enumerate(model.layout.levels):
        blocks = f"{lv.stage_blocks} x {lv.stage_kind}" if lv.stage_blocks else "one layer"
        pair = "pair" if lv_i in model.pair_levels else "no pair (h_c)"
        print(f"  level {lv_i}: {lv.module:<24} {lv.channels:>5} ch {lv.size[0]:>4}x{lv.size[1]:<4} "
              f"x{lv.factor[0]} switches={lv.switch_kind:<7} blocks={blocks:<16} {pair}")
    for name, n in counts.items():
        print(f"  {name:<10} {n / 1e6:8.3f} M parameters")
    return 0


def _cmd_eval(args) -> int:
    from .evaluate import evaluate_saved

    logs.attach_console("quiet")  # warnings and errors: a test set of another size than the training one is said, not refused
    res = evaluate_saved(args.run, dataset=args.dataset, data_path=args.data_path, batch_size=args.batch_size,
                         image_size=args.image_size, max_images=args.max_images)
    for k, v in res.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    return 0


def _cmd_push(args) -> int:
    from .hub import push_run

    url = push_run(args.run, args.repo_id, token=args.token, private=args.private, revision=args.revision,
                   picture=not args.no_picture)
    print(f"pushed {args.run} to {args.repo_id}: {url}")
    return 0


def _cmd_export(args) -> int:
    from .evaluate import resolve_model_dir
    from .export import export_classifier
    from .hub import resolve_token, upload_folder, validate_repo_id
    from .serialization import load_model

    if args.repo_id:
        validate_repo_id(args.repo_id)
        token = resolve_token(args.token)
    model_dir, _ = resolve_model_dir(args.run)
    model, teacher = load_model(model_dir)
    if args.teacher and teacher is None:
        raise CheckpointError(f"{args.run} has no Mean Teacher weights; export the student (drop --teacher).")
    if args.onnx:
        from .onnx_export import require_onnx

        require_onnx()  # before anything is written: without the extra, say so and stop
    out = Path(args.output_dir) if args.output_dir else Path(tempfile.mkdtemp(prefix="hybridwrap-export-"))
    export_classifier(model, out, teacher=teacher if args.teacher else None)
    print(f"exported the {'teacher' if args.teacher else 'student'} classifier to {out}")
    if args.onnx:
        from .onnx_export import export_onnx

        check = export_onnx(model, out / "model.onnx", teacher=teacher if args.teacher else None)
        axes = "batch, height and width" if check["dynamic_height_width"] else "batch"
        print(f"wrote {check['path']} (opset {check['opset']}, dynamic {axes}); onnxruntime matches PyTorch: max "
              f"|logit difference| {check['max_abs_diff']:.1e} on inputs {check['checked_shapes']}")
    if args.repo_id:
        offline = f"offline, the classifier stays in {out}: upload that folder later (`hf upload {args.repo_id} {out}`)."
        url = upload_folder(out, args.repo_id, token, args.private, "Upload classifier exported by hybridwrap", None,
                            offline)
        print(f"pushed to {args.repo_id}: {url}")
    return 0


def _cmd_predict(args) -> int:
    from .prediction import load_classifier, predict, write_predictions
    from .preprocess import find_images

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}.")
    images = find_images(args.inputs)
    classifier = load_classifier(args.source, teacher=args.teacher)
    cfg = classifier.config
    print(f"{len(images)} image(s); {cfg.backbone} takes {cfg.in_chans}x{cfg.input_size[0]}x{cfg.input_size[1]} "
          f"inputs, {cfg.num_classes} classes", file=sys.stderr)
    records = predict(classifier, images, top_k=args.top_k, batch_size=args.batch_size,
                      progress=not args.no_progress and len(images) > args.batch_size)
    failed = [r for r in records if "error" in r]
    for r in records:
        if "error" in r:
            print(f"hybridwrap: warning: {r['error']}; skipped", file=sys.stderr)
            continue
        top = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in r["top_k"])
        note = f"  (converted {r['converted']})" if r["converted"] else ""
        print(f"{r['image']}: {top}{note}")
    if args.output:
        print(f"wrote {write_predictions(records, args.output)}", file=sys.stderr)
    if failed:
        raise DataError(f"{len(failed)} of {len(records)} image(s) could not be read (named above); the other "
                        f"{len(records) - len(failed)} were predicted.")
    return 0


def _cmd_card(args) -> int:
    from .card import render_card

    output = Path(args.output) if args.output else Path(args.run) / "README.md"
    card = render_card(args.run, repo_id=args.repo_id, picture_dir=None if args.no_picture else output.parent)
    card.save(output)
    print(f"wrote {output}")
    return 0


def _cmd_visualize(args) -> int:
    from .visualize import visualize_run

    print(f"wrote {visualize_run(args.run, args.output, n=args.num, data_path=args.data_path)}")
    return 0


def _cmd_config(args) -> int:
    from . import resolution
    from .resolution import RESOLVED_MODEL_FIELDS
    # the preset switches the branches and loss terms; mixed_precision: auto becomes this machine's precision
    cfg, precision_reason = resolution.before_data(config_from_args(args))
    if args.dataset:  # what a run resolves from the data and the backbone: what it will train
        from .data import load_data

        data = load_data(cfg.data)
        cfg = resolution.resolve(cfg, data, resolution.pool_size(cfg, data))
    resolved = json.loads(json.dumps(to_dict(cfg), default=list))
    if args.keys:
        for section, value in resolved.items():
            for key, v in (value.items() if isinstance(value, dict) else [(None, value)]):
                name = f"{section}.{key}" if key else section
                print(f"--set {name}={json.dumps(v)}")
        return 0
    print("# the resolved config: save it and pass it with --config, or change any field with --set SECTION.FIELD=VALUE")
    left = ", ".join(f"model.{k}" for k in RESOLVED_MODEL_FIELDS if resolved["model"][k] is None)
    if args.dataset:
        print(f"# (resolved from --dataset {args.dataset}'s data and the backbone: what a run trains)")
    elif left:
        print(f"# ({left} left null are resolved from the data and the backbone when training starts; "
              "--dataset resolves them here)")
    print(f"# (mixed_precision: {precision_reason}; leave it auto in a config meant for other machines)")
    print(yaml.safe_dump(resolved, sort_keys=False), end="")
    return 0


def _cmd_tune(args) -> int:
    from .tune import parse_grid, tune

    seeds = args.seeds
    args.output_dir, args.seeds, args.baseline = None, None, False  # not tune options
    cfg = config_from_args(args)
    if args.val_size is not None:
        if args.val_size < 1:
            raise ConfigError(f"--val-size must be at least 1 image, got {args.val_size}.")
        cfg.data.val_size = args.val_size
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}.")
    grid = parse_grid(args.grid, cfg.preset)
    try:
        summary = tune(cfg, grid, args.tune_dir, seeds=[cfg.seed + k for k in range(seeds)],
                       metric=args.metric, early_stop=args.early_stop)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted. Re-running the same command resumes: finished trials are kept in "
                          f"{args.tune_dir}/trials.jsonl and the interrupted one continues from its last "
                          "checkpoint.") from None
    metric = summary["metric"]
    print(f"{'rank':<5} {'setting':<50} {metric:>16}")
    for i, row in enumerate(summary["ranking"], 1):
        setting = " ".join(f"{k}={v}" for k, v in row["settings"].items())
        print(f"{i:<5} {setting:<50} {row[metric]:>15.2f}%")
    for row in summary["stopped_early"]:
        setting = " ".join(f"{k}={v}" for k, v in row["settings"].items())
        print(f"{'-':<5} {setting:<50} {row[metric]:>15.2f}% at step {summary['early_stop_step']} (stopped early)")
    print(f"chosen on {summary['val_size']} validation images (test set unused): {args.tune_dir}/best.yaml")
    print(f"train it with: hybridwrap train --config {args.tune_dir}/best.yaml")
    line = budget.reconstruction_line(summary["labels"])
    if line:
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``hybridwrap`` command's parser, every subcommand with its options (the docs' CLI reference is generated
    from it).

    Returns:
        The parser; ``parse_args`` gives the subcommand in ``command`` and its handler in ``fn``;
        ``parser.subcommands`` maps each subcommand's name to its own parser.

    Examples:
        >>> build_parser().parse_args(["summary", "resnet18"]).command
        'summary'
    """
    parser = argparse.ArgumentParser(
        prog="hybridwrap", description="HybridNet around any timm-style CNN.",
        epilog="exit status: 0 done, 2 config or usage error, 3 data, 4 checkpoint, 5 Hub or network, 6 training "
               "stopped (non-finite loss), 130 interrupted, 1 anything else")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a HybridNet (defaults to the embedded quickstart: real MNIST, offline)",
                       description="Train a HybridNet semi-supervised, and with --baseline its labeled-only baseline.")
    add_train_arguments(p)

    p = sub.add_parser("config", help="print the resolved training config, or every --set key",
                       description="Resolve the config that `hybridwrap train` would run with the same options and print "
                                   "it as YAML (usable with --config), or with --keys one `--set` line per field.")
    add_train_arguments(p)
    show = p.add_mutually_exclusive_group()
    show.add_argument("--show", action="store_true", help="print the resolved config as YAML (the default)")
    show.add_argument("--keys", action="store_true", help="print every --set key with its resolved value")
    p.set_defaults(fn=_cmd_config)

    p = sub.add_parser("tune", help="choose hyperparameters on a validation split of the training images",
                       description="Train one trial per grid setting on a validation split held out of the training "
                                   "images (never the test set) and write trials.jsonl, tune.json and best.yaml (a "
                                   "config for `hybridwrap train --config`). Re-running resumes.")
    p.add_argument("--config", action="extend", nargs="+",
                   help="YAML config(s), as for train (default: the quickstart, real MNIST)")
    p.add_argument("--preset", help="Table 1/2 preset to tune")
    p.add_argument("--dataset", help="mnist5k | digits | mnist | cifar10 | svhn | stl10 | npz | imagefolder | disk")
    p.add_argument("--data-path", help="local file/folder for the dataset")
    p.add_argument("--max-steps", type=int, help="training steps of a finished trial")
    p.add_argument("--seed", type=int, help="first seed")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="override a config field")
    p.add_argument("--tune-dir", default="runs/tune", help="where trials and results go (default: runs/tune)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar within a trial")
    p.add_argument("--grid", action="append", metavar="SECTION.FIELD=V1,V2,...",
                   help="values to try (repeatable; the grid is their product). Default: the paper's "
                        "loss.lambda_rec=0.25,0.5,1.0 x loss.lambda_rec_inter=0.25,0.5,1.0")
    p.add_argument("--seeds", type=int, default=1, help="seeds per setting (scores are averaged; default 1)")
    p.add_argument("--val-size", type=int, help="training images held out for validation (default: a fifth, <= 5000)")
    p.add_argument("--metric", default="val_acc", help="val_acc (student, default) or teacher_val_acc")
    p.add_argument("--early-stop", type=float, default=0.5,
                   help="score every trial at this fraction of max_steps and finish only the better half (0: off)")
    p.set_defaults(fn=_cmd_tune)

    p = sub.add_parser("eval", help="evaluate a trained run's student and teacher on a test set")
    p.add_argument("run", help="run directory (or its model/ folder)")
    p.add_argument("--dataset", help="dataset to evaluate on (default: the run's own)")
    p.add_argument("--data-path", help="local file/folder of that dataset (npz, ImageFolder root, save_to_disk dir)")
    p.add_argument("--image-size", type=int, help="resize the images to this side first (default: the run's own "
                                                       "data.image_size)")
    p.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N test images")
    p.set_defaults(fn=_cmd_eval)

    p = sub.add_parser("backbones", help="list registered backbones")
    p.add_argument("--all", action="store_true", help="include every timm model")
    p.add_argument("--filter", help="glob pattern, e.g. 'resnet*'")
    p.set_defaults(fn=_cmd_backbones)

    p = sub.add_parser("summary", help="wrap a backbone and print its levels and parameter counts")
    p.add_argument("backbone", help="a registered backbone or any timm CNN (`hybridwrap backbones` lists them)")
    p.add_argument("--num-classes", type=int, default=10, help="classes of the head C (default: 10)")
    p.add_argument("--in-chans", type=int, default=3, help="image channels (default: 3)")
    p.add_argument("--input-size", type=int, help="image side in pixels (default: the backbone's pretrained_cfg)")
    p.add_argument("--decoder", choices=DECODERS,
                   help="decoder blocks (default: the backbone's: mirror for timm CNNs, generic for ConvLarge)")
    p.set_defaults(fn=_cmd_summary)

    p = sub.add_parser("push", help="push a finished run (weights, model card, picture) to the Hugging Face Hub")
    p.add_argument("run", help="a finished run directory (it holds model/)")
    p.add_argument("--repo-id", required=True, help="namespace/name")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the `hf auth login` token)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.add_argument("--revision", help="branch to push to (default: main)")
    p.add_argument("--no-picture", action="store_true", help="skip the reconstruction picture")
    p.set_defaults(fn=_cmd_push)

    p = sub.add_parser("export", help="export E_c + C as a plain timm checkpoint (optionally push it)")
    p.add_argument("run", help="run directory or saved model directory")
    p.add_argument("--output-dir", help="folder for the timm checkpoint (default: a new temporary folder)")
    p.add_argument("--teacher", action="store_true", help="export the Mean Teacher instead of the student")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (checked against PyTorch with "
                                                         "onnxruntime; needs pip install 'hybridwrap[onnx]')")
    p.add_argument("--repo-id", help="also push the classifier to this Hub repo")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the `hf auth login` token)")
    p.add_argument("--private", action="store_true", help="create the repo as private")
    p.set_defaults(fn=_cmd_export)

    p = sub.add_parser("predict", help="classify new images with a trained model (top-k classes with their names)")
    p.add_argument("source", help="run directory, saved model directory, Hub repo id, exported classifier "
                                  "(directory or hf-hub:owner/name) or model.onnx")
    p.add_argument("inputs", nargs="+", help="image files, folders (searched recursively) or quoted glob patterns")
    p.add_argument("--top-k", type=int, default=5, help="classes per image (default: 5)")
    p.add_argument("--output", help="also write one row per image to this .csv or .jsonl file")
    p.add_argument("--teacher", action="store_true", help="predict with the Mean Teacher instead of the student")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(fn=_cmd_predict)

    p = sub.add_parser("card", help="render a run's model card locally")
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--repo-id", help="repo id used in the usage snippets")
    p.add_argument("--output", help="default: RUN/README.md")
    p.add_argument("--no-picture", action="store_true", help="do not draw the reconstruction picture")
    p.set_defaults(fn=_cmd_card)

    p = sub.add_parser("visualize", help="draw x, x̂_c, x̂_u, x̂ for test images of a run (Fig. 4)")
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--output", help="PNG path (default: RUN/reconstructions.png)")
    p.add_argument("--num", type=int, default=8, help="test images to draw (default: 8)")
    p.add_argument("--data-path", help="local file/folder of the run's dataset, if it was trained from one")
    p.set_defaults(fn=_cmd_visualize)

    p = sub.add_parser("launch", add_help=False,
                       help="accelerate launch for a hybridwrap command, with clean errors and exit statuses "
                            "(hybridwrap launch --multi_gpu --num_processes 2 train ...; launch --help)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    parser.subcommands = dict(sub.choices)  # name -> its parser, for the generated CLI reference
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``hybridwrap`` command: parse ``argv`` (default: the process's arguments) and run the subcommand.

    Returns:
        The exit status (0 done; 2 config, 3 data, 4 checkpoint, 5 Hub, 6 training stopped, 130 interrupted).
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["launch"]:  # its options are accelerate's: parsed there
        return launch_main(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "train":
        return train_main(argv[1:])
    return run_user_command(lambda: args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
