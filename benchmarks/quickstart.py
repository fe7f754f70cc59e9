"""The README's first command, measured: HybridNet and its labeled-only baseline on the embedded digits.

    python benchmarks/quickstart.py            # = hybridwrap train --baseline, timed, results kept as JSON

Runs exactly what `hybridwrap train --baseline` runs (configs/quickstart.yaml: every seed of HybridNet, then
every seed of the baseline) in a throw-away directory, and writes ``results/quickstart-digits.json``: the
per-seed test accuracies, the wall-clock seconds of the whole command, the machine, and the table the
command prints. ``render_results.py`` turns it into the "First command" section of RESULTS.md.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from hybridwrap.hardware import cpu_capability  # the SIMD level and native bf16, beside every time

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import argparse

    from ablation import git_commit

    from hybridwrap.train import format_results, train_with_baseline
    from hybridwrap.train_cli import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    with tempfile.TemporaryDirectory(prefix="hybridwrap-quickstart-") as tmp:
        args = parser.parse_args(["--baseline", "--no-progress", "--output-dir", str(Path(tmp) / "run")])
        cfg = config_from_args(args)
        t0 = time.time()
        results = train_with_baseline(cfg)
        seconds = time.time() - t0
    table = format_results(results, cfg.selected_by)
    print(table)
    out = {
        "command": "hybridwrap train --baseline", "config": "configs/quickstart.yaml", "seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "cpu_capability": cpu_capability(),
        "precision": results[0].get("precision", cfg.mixed_precision), "commit": git_commit(),
        "selected_by": cfg.selected_by, "seeds": cfg.seeds, "num_labels": cfg.data.num_labels,
        "max_steps": cfg.max_steps, "table": table,
        "runs": [{k: r.get(k) for k in ("preset", "seed", "labels_seed", "test_acc", "teacher_test_acc", "seconds")}
                 for r in results],
    }
    path = HERE / "results" / "quickstart-digits.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
