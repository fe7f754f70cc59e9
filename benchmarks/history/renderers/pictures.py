"""Reconstruction pictures of a trained run."""

from __future__ import annotations

from rendering.common import is_table_run, run_id


def picture_lines(runs: list[dict]) -> list[str]:
    """Where the Fig. 4 picture of the best run comes from (the picture itself is not committed)."""
    with_decoder = [r for r in runs if r["preset"] in ("hybrid_architecture", "full")  # both branches: x̂_c and x̂_u
                    and is_table_run(r) and r.get("val_acc") is not None]
    if not with_decoder:
        return []
    best = run_id(max(with_decoder, key=lambda r: r["val_acc"]))
    return ["### Reconstructions of the best CPU run", "",
            f"The best two-branch run by validation accuracy is `{best}`. Its Fig. 4-style picture (rows x, x̂_c, x̂_u, x̂) "
            "shows CIFAR-10 test images, so it is not committed (nothing derived from the data is); draw it with:",
            "", "```bash", f"hybridwrap visualize benchmarks/runs/{best} --output benchmarks/results/figures/{best}.png",
            "```", ""]
