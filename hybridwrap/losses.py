"""The HybridNet objective, one function per equation of §3.2.

Norms. The paper writes squared L2 norms ||.||². With ``norm="mean"`` (default) they are computed as
per-element means, the scaling of the official code under which the paper's weights (every λ = 1,
λ_s = 100) give "loss terms of the same order of magnitude" (§4.1). ``norm="sum"`` gives the literal
squared norm, whose scale grows with the number of pixels/classes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _per_sample_sq(diff: torch.Tensor, norm: str) -> torch.Tensor:
    sq = diff.float().pow(2).flatten(1)
    return sq.mean(1) if norm == "mean" else sq.sum(1)


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, labeled: torch.Tensor,
                        average: str = "labeled") -> torch.Tensor:
    """Eq. 3: cross-entropy on the labeled part of the batch.

    ``average="labeled"`` divides by n_s (the paper); ``"batch"`` divides by the whole batch n (the
    official code), which weighs it n_s/n as much.
    """
    n_labeled = int(labeled.sum())
    if n_labeled == 0:
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits[labeled].float(), targets[labeled], reduction="sum")
    return ce / (n_labeled if average == "labeled" else logits.shape[0])


def reconstruction_error(x_hat: torch.Tensor, x: torch.Tensor, norm: str = "mean") -> torch.Tensor:
    """ℓ_rec = ||x̂ - x||² per sample."""
    return _per_sample_sq(x_hat - x, norm)


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, norm: str = "mean") -> torch.Tensor:
    """Eq. 4: L_rec = (1/n) Σ_k ||x̂ - x||²."""
    return reconstruction_error(x_hat, x, norm).mean()


BALANCE_RULES = ("paper", "official_code")


def balanced_reconstruction_loss(x_hat_c: torch.Tensor, x_hat_u: torch.Tensor, x: torch.Tensor,
                                 norm: str = "mean", rule: str = "paper") -> torch.Tensor:
    """Eq. 6: per sample, the final reconstruction loss trains only the branch with the larger error.

    ``rule="paper"``: if ||x̂_u - x||² >= ||x̂_c - x||²: ||x̂_u + stopgrad(x̂_c) - x||², else
    ||stopgrad(x̂_u) + x̂_c - x||². The value equals Eq. 4's; only the gradient is routed.

    ``rule="official_code"``: the official step as it ran. Its network stores one tensor as both ``x_hat`` and
    ``x_hat_c`` and then adds x̂_u into it in place (architectures.py 297-298 and 317; STL-10: 541-542, 576), so
    the balancing (main_hybrid.py 408-416) sees x̂_c + x̂_u where Eq. 6 has x̂_c: it compares ||x̂ - x||² with
    ||x̂_u - x||², its value is ||x̂_c + 2 x̂_u - x||², and it sends the gradient to both branches when the full
    error is the larger (ties: to x̂_u alone), else to x̂_u alone.
    """
    if rule == "official_code":
        x_hat_c = x_hat_c + x_hat_u  # the aliased tensor the official balancing reads as x̂_c
    elif rule != "paper":
        raise ValueError(f"loss.balance_rule must be one of {', '.join(BALANCE_RULES)}, got {rule!r}")
    with torch.no_grad():
        u_worse = reconstruction_error(x_hat_u, x, norm) >= reconstruction_error(x_hat_c, x, norm)
    to_u = reconstruction_error(x_hat_u + x_hat_c.detach(), x, norm)
    to_c = reconstruction_error(x_hat_u.detach() + x_hat_c, x, norm)
    return torch.where(u_worse, to_u, to_c).mean()


def intermediate_reconstruction_loss(h_hat: torch.Tensor, h: torch.Tensor, detach_target: bool = False,
                                     norm: str = "mean") -> torch.Tensor:
    """Eq. 5: L_rec-inter_{b,l} = (1/n) Σ_k ||ĥ_{b,l} - h_{b,l}||².

    ``detach_target=True`` stops the gradient into the encoder's h_{b,l} (official code); the paper's
    equation lets it flow into both the encoder and the decoder.
    """
    if detach_target:
        h = h.detach()
    return _per_sample_sq(h_hat - h, norm).mean()


def stability_loss(logits: torch.Tensor, target_probs: torch.Tensor, mask: torch.Tensor | None = None,
                   norm: str = "mean") -> torch.Tensor:
    """Eq. 7: Ω = (1/n) Σ_k ||ŷ - z||², ŷ the student's softmax, z the (constant) stability target.

    ``mask`` drops samples that have no target yet (Temporal Ensembling's first visit); the average
    stays over the whole batch n.
    """
    per_sample = _per_sample_sq(F.softmax(logits.float(), dim=1) - target_probs.detach().float(), norm)
    if mask is not None:
        per_sample = per_sample * mask.float()
    return per_sample.mean()


def logit_distance_loss(class_logits: torch.Tensor, stability_logits: torch.Tensor) -> torch.Tensor:
    """Mean Teacher's two-head cost: (1/n) Σ_k ||ŷ_class - ŷ_stability||² / num_classes, on logits.

    Gradients reach both heads (Tarvainen & Valpola 2017's symmetric MSE).
    """
    return (class_logits.float() - stability_logits.float()).pow(2).mean(1).mean()


def objective_terms(out, x: torch.Tensor, labels: torch.Tensor, loss_cfg, z: torch.Tensor | None = None,
                    z_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every active term of Eq. 2 for one batch (unweighted); ``labels`` is -1 for unlabeled images.

    ``loss_cfg`` is a :class:`~hybridwrap.config.LossConfig`; ``z`` the stability targets (Eq. 7), if any.
    """
    lc = loss_cfg
    terms: dict[str, torch.Tensor] = {}
    if lc.classification:
        terms["cls"] = classification_loss(out.logits, labels.clamp(min=0), labels >= 0, lc.ce_average)
    if lc.reconstruction and out.x_hat is not None:
        if lc.balance and out.x_hat_u is not None:
            terms["rec"] = balanced_reconstruction_loss(out.x_hat_c, out.x_hat_u, x, lc.norm, lc.balance_rule)
        else:
            terms["rec"] = reconstruction_loss(out.x_hat, x, lc.norm)
    if lc.intermediate:
        for pair in out.pairs:
            terms[f"rec_inter_{pair.branch}{pair.level}"] = intermediate_reconstruction_loss(
                pair.h_hat, pair.h, lc.detach_intermediate_targets, lc.norm)
    two_heads = getattr(out, "stability_logits", None) is not None
    if z is not None:  # with two heads the stability cost acts on the second one, never on the deployed one
        terms["stability"] = stability_loss(out.stability_logits if two_heads else out.logits, z, z_mask,
                                            norm=lc.norm)
    if two_heads and lc.lambda_logit_distance > 0:
        terms["logit_distance"] = logit_distance_loss(out.logits, out.stability_logits)
    return terms


def total_loss(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Eq. 2: L = λ_c L_cls + λ_r L_rec + Σ_{b,l} λ_{r b,l} L_rec-inter b,l + λ_s Ω_stability."""
    total = None
    for name, value in terms.items():
        w = weights[_weight_key(name)]
        total = value * w if total is None else total + value * w
    return total


def _weight_key(term: str) -> str:
    return "rec_inter" if term.startswith("rec_inter") else term


# ------------------------------------------------------------------------------------ schedules


def sigmoid_rampup(step: int, length: int) -> float:
    """exp(-5 (1 - t)²), t = step/length in [0, 1] (Laine & Aila 2017; Tarvainen & Valpola 2017)."""
    if length <= 0:
        return 1.0
    t = min(max(step, 0), length) / length
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


def cosine_rampdown(step: int, total: int) -> float:
    """0.5 (cos(π t) + 1), t = step/total: 1 at the start, 0 at the end."""
    if total <= 0:
        return 1.0
    t = min(max(step, 0), total) / total
    return float(0.5 * (math.cos(math.pi * t) + 1.0))


def gaussian_rampdown(step: int, total: int) -> float:
    """exp(-12.5 t²), t = step/total: Temporal Ensembling's ramp-down (1 at the start, e^-12.5 at the end)."""
    if total <= 0:
        return 1.0
    t = min(max(step, 0), total) / total
    return float(math.exp(-12.5 * t * t))


def linear_rampdown(step: int, total: int) -> float:
    """1 - t, t = step/total (the official shake-shake run's last 120 of 300 epochs)."""
    if total <= 0:
        return 1.0
    return float(max(0.0, 1.0 - step / total))


def loss_weights(loss_cfg, step: int, max_steps: int) -> dict[str, float]:
    """λ of every term at ``step``, ramps applied."""
    down = cosine_rampdown(step, max_steps) if loss_cfg.rec_rampdown else 1.0
    inter_rampup = loss_cfg.rec_rampup_steps if loss_cfg.rec_inter_rampup_steps is None else loss_cfg.rec_inter_rampup_steps
    return {
        "cls": loss_cfg.lambda_cls,
        "rec": loss_cfg.lambda_rec * sigmoid_rampup(step, loss_cfg.rec_rampup_steps) * down,
        "rec_inter": loss_cfg.lambda_rec_inter * sigmoid_rampup(step, inter_rampup) * down,
        "stability": loss_cfg.lambda_stability * sigmoid_rampup(step, loss_cfg.stability_rampup_steps),
        "logit_distance": loss_cfg.lambda_logit_distance,
    }
