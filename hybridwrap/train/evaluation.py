"""Evaluation: accuracy of the student and the teacher, branch statistics, and how scores are printed."""

from __future__ import annotations

import math

import torch

from .. import logs

logger = logs.get_logger("hybridwrap.train")
COLLAPSE_SHARE = 0.02  # a branch producing < 2% of x̂'s energy has collapsed (§3.2)


def branch_statistics(out, x: torch.Tensor) -> dict[str, float]:
    """How much each branch contributes to x̂: energy share and PSNR (images in [-1, 1], peak-to-peak 2)."""
    stats = {}
    if out.x_hat is None:
        return stats

    def psnr(y):
        mse = (y.float() - x.float()).pow(2).mean().item()
        return 10 * math.log10(4.0 / max(mse, 1e-12))

    stats["psnr_x_hat"] = psnr(out.x_hat)
    if out.x_hat_u is not None:
        e_c = out.x_hat_c.float().pow(2).sum().item()
        e_u = out.x_hat_u.float().pow(2).sum().item()
        stats["energy_share_c"] = e_c / max(e_c + e_u, 1e-12)
        stats["energy_share_u"] = 1.0 - stats["energy_share_c"]
        stats["psnr_x_hat_c"] = psnr(out.x_hat_c)
        stats["psnr_x_hat_u"] = psnr(out.x_hat_u)
    return stats


def collapsed_branch(energy_share_c: float | None) -> str | None:
    """Which branch has collapsed to ~0 (under COLLAPSE_SHARE of x̂'s energy), if any."""
    if energy_share_c is None or min(energy_share_c, 1 - energy_share_c) >= COLLAPSE_SHARE:
        return None
    return "discriminative (x̂_c)" if energy_share_c < 0.5 else "unsupervised (x̂_u)"


def describe_scores(values: dict) -> str:
    """'test 93.40% (teacher 94.10%), validation 92.00% (teacher 92.33%)' from an evaluation's values."""
    parts = []
    for split, name in (("test", "test"), ("val", "validation")):
        if f"{split}_acc" in values:
            teacher = values.get(f"teacher_{split}_acc")
            parts.append(f"{name} {values[f'{split}_acc']:.2f}%" + (f" (teacher {teacher:.2f}%)" if teacher is not None else ""))
    return ", ".join(parts) or "no evaluation split"


@torch.no_grad()
def accuracy(run, net: torch.nn.Module, loader) -> float:
    """Top-1 accuracy in fp32 whatever the training precision: every reported accuracy (metrics, tune, card) is then
    what `hybridwrap eval` and `predict` reproduce from the saved weights, which run in fp32."""
    correct = total = 0
    for x, y in loader:
        logits = net(run.normalize(x).float())
        pred, y = run.accelerator.gather_for_metrics((logits.argmax(1), y))
        correct += int((pred == y).sum())
        total += len(y)
    return 100.0 * correct / max(total, 1)


@torch.no_grad()
def evaluate(run) -> dict:
    """The scores of ``run`` (a `loop.Run`) now: student and teacher on the test split and the validation hold-out,
    and the branch statistics (with a warning when a branch has collapsed)."""
    model = run.accelerator.unwrap_model(run.model)
    model.eval()
    res = {}
    if run.teacher is not None:
        run.teacher.model.eval()
    for name, loader in (("test", run.eval_loader), ("val", run.val_loader)):
        if loader is not None:
            res[f"{name}_acc"] = accuracy(run, model.backbone, loader)
            if run.teacher is not None:
                res[f"teacher_{name}_acc"] = accuracy(run, run.teacher.model, loader)
    if model.decoder_c is not None:
        # branch statistics on 64 test images, or on validation images when the test split is off limits
        images = (run.data.test_x[:64] if run.eval_loader is not None
                  else run.data.train_x[torch.tensor(run.split.val[:64], dtype=torch.long)])
        x = run.normalize(images.to(run.accelerator.device))
        res.update({f"branch/{k}": v for k, v in branch_statistics(model(x, reconstruct=True), x).items()})
        weak = collapsed_branch(res.get("branch/energy_share_c"))
        if weak and run.accelerator.is_main_process:
            share = res["branch/energy_share_c"]
            logger.warning(f"step {run.state.step}: the {weak} branch produces only "
                           f"{100 * min(share, 1 - share):.1f}% of x̂'s energy: it has collapsed (§3.2). Enable "
                           "loss.balance and loss.intermediate, or raise loss.lambda_rec_inter.")
            res["branch/collapsed"] = weak
    return res
