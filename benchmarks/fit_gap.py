"""How far has each benchmark run fitted its labeled images? (the "why" of the stability study)

    python benchmarks/fit_gap.py                 # every finished run in benchmarks/runs/ without a result
    python benchmarks/fit_gap.py --runs official-full-w0.25-n4000-it1000-s0 ...

Stability (Eq. 7) is a regulariser: it can only raise validation accuracy once the classifier fits its
labeled images better than it generalises. For each finished run this measures, without augmentation,
the student's (and teacher's) accuracy on the run's own labeled images (labels.json) and on its
validation hold-out, and writes benchmarks/results/fitgap-RUN.json. The test set is not read.
``render_results.py`` puts the numbers beside the ablation table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


_DATA_CACHE: dict[str, object] = {}  # runs of one benchmark share their training images: read them once


def _training_images(saved: dict):
    from hybridwrap.config import DataConfig
    from hybridwrap.data import load_data

    data_cfg = DataConfig(**{k: v for k, v in saved.items() if k in DataConfig.__dataclass_fields__})
    data_cfg.max_eval_images = 1  # only the training images are read
    key = json.dumps([data_cfg.dataset, data_cfg.path, data_cfg.image_size, data_cfg.max_train_images])
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_data(data_cfg)
    return _DATA_CACHE[key]


def measure(run_dir: Path) -> dict:
    import torch

    from hybridwrap.data import Split
    from hybridwrap.evaluate import accuracy
    from hybridwrap.serialization import load_model

    torch.manual_seed(0)
    model, teacher = load_model(run_dir / "model")
    data = _training_images(json.loads((run_dir / "train_config.json").read_text())["data"])
    split = Split.load(run_dir / "labels.json")
    parts = {"labeled": torch.tensor(split.labeled), "val": torch.tensor(split.val)}
    result = {"run": run_dir.name, "labels": len(split.labeled), "val_size": len(split.val)}
    for who, net in (("student", model.backbone), ("teacher", teacher)):
        if net is None:
            continue
        for part, idx in parts.items():
            if len(idx):
                result[f"{who}_{part}_acc"] = accuracy(net, data.train_x[idx], data.train_y[idx], 500,
                                                        model.config.mean, model.config.std)
        if len(parts["val"]):
            result[f"{who}_gap"] = result[f"{who}_labeled_acc"] - result[f"{who}_val_acc"]
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="*", help="run names under --runs-dir (default: every finished run)")
    p.add_argument("--runs-dir", default=str(HERE / "runs"))
    p.add_argument("--results-dir", default=str(HERE / "results"))
    p.add_argument("--force", action="store_true", help="measure again even where a result exists")
    args = p.parse_args(argv)
    runs_dir, results = Path(args.runs_dir), Path(args.results_dir)
    names = args.runs or (sorted(d.name for d in runs_dir.iterdir() if (d / "model").is_dir()) if runs_dir.is_dir() else [])
    if not names:
        sys.exit(f"No finished runs under {runs_dir}: train some with benchmarks/ablation.py first.")
    for name in names:
        run_dir = runs_dir / name
        if not (run_dir / "model").is_dir():
            sys.exit(f"{run_dir} has no trained model (model/): finish it with benchmarks/ablation.py first.")
        out = results / f"fitgap-{name}.json"
        if out.exists() and not args.force:
            continue
        result = measure(run_dir)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(out)
        print(f"{name}: labeled {result['student_labeled_acc']:.2f}  val {result.get('student_val_acc', float('nan')):.2f}")


if __name__ == "__main__":
    main()
