"""The README's first command, measured: HybridNet and its labeled-only baseline on the embedded digits.

    python benchmarks/quickstart.py            # = hybridwrap train --baseline, timed, results kept as JSON
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=benchmarks/no_native_bf16 \
        python benchmarks/quickstart.py --tag avx2   # the same, as on a CPU without native bf16 (fp32)

Runs exactly what `hybridwrap train --baseline` runs (configs/quickstart.yaml: every seed of HybridNet, then
every seed of the baseline) in a throw-away directory, and writes ``results/quickstart-digits.json``: the
per-seed test accuracies, the wall-clock seconds of the whole command, the machine and its CPU capability
(and the emulation, where benchmarks/no_native_bf16 stood in for another CPU), and the table the command
prints (``results/quickstart-digits-<tag>.json`` with ``--tag``). ``render_results.py`` turns it into the "First command" section of RESULTS.md.
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

    own = argparse.ArgumentParser()
    own.add_argument("--tag", help="write results/quickstart-digits-TAG.json (e.g. avx2 for the emulated CPU)")
    tag = own.parse_args().tag
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
        "cpu_emulation": os.environ.get("HYBRIDWRAP_CPU_EMULATION"),
        "precision": results[0].get("precision", cfg.mixed_precision), "commit": git_commit(),
        "selected_by": cfg.selected_by, "seeds": cfg.seeds, "num_labels": cfg.data.num_labels,
        "max_steps": cfg.max_steps, "image_size": cfg.data.image_size,
        "batch": [cfg.data.labeled_batch_size, cfg.data.unlabeled_batch_size], "table": table,
        "runs": [{k: r.get(k) for k in ("preset", "seed", "labels_seed", "test_acc", "teacher_test_acc", "seconds")}
                 for r in results],
    }
    path = HERE / "results" / (f"quickstart-digits-{tag}.json" if tag else "quickstart-digits.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
