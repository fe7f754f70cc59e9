"""Each term of Eq. 2-7 against a value computed by hand; gradient routing of Eq. 6; EMA and TE updates."""

import math
from pathlib import Path

import pytest
import torch

import hybridwrap
from hybridwrap import losses
from hybridwrap.teachers import MeanTeacher, TemporalEnsembling


def test_eq3_cross_entropy_over_labeled_samples():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    targets = torch.tensor([0, 1, 0])
    labeled = torch.tensor([True, True, False])
    a, b = math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))
    assert losses.classification_loss(logits, targets, labeled, "labeled").item() == pytest.approx((a + b) / 2)
    assert losses.classification_loss(logits, targets, labeled, "batch").item() == pytest.approx((a + b) / 3)
    assert losses.classification_loss(logits, targets, torch.zeros(3, dtype=torch.bool)).item() == 0.0


def test_eq4_reconstruction():
    x_hat = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(2, 1, 1, 2)
    x = torch.zeros_like(x_hat)
    assert losses.reconstruction_loss(x_hat, x, "mean").item() == pytest.approx(((1 + 4) / 2 + (9 + 16) / 2) / 2)
    assert losses.reconstruction_loss(x_hat, x, "sum").item() == pytest.approx((5 + 25) / 2)


def test_eq6_routes_the_gradient_to_the_worse_branch_per_sample():
    x = torch.zeros(2, 1, 1, 2)
    # sample 0: x̂_u is worse (error 4 vs 1); sample 1: x̂_c is worse (error 9 vs 0.25)
    x_hat_c = torch.tensor([[1.0, 1.0], [3.0, 3.0]]).view(2, 1, 1, 2).requires_grad_()
    x_hat_u = torch.tensor([[2.0, 2.0], [0.5, 0.5]]).view(2, 1, 1, 2).requires_grad_()
    loss = losses.balanced_reconstruction_loss(x_hat_c, x_hat_u, x)
    # its value is Eq. 4's: mean over samples of mean((x̂_c + x̂_u)^2) = (9 + 12.25) / 2
    assert loss.item() == pytest.approx((9 + 12.25) / 2)
    loss.backward()
    assert torch.all(x_hat_c.grad[0] == 0) and torch.all(x_hat_u.grad[0] != 0)
    assert torch.all(x_hat_c.grad[1] != 0) and torch.all(x_hat_u.grad[1] == 0)
    # d/dx̂ of (1/2) * mean_j (x̂_c + x̂_u)^2 over 2 elements = (x̂_c + x̂_u) / 2
    torch.testing.assert_close(x_hat_u.grad[0], torch.full((1, 1, 2), 3.0 / 2))
    torch.testing.assert_close(x_hat_c.grad[1], torch.full((1, 1, 2), 3.5 / 2))


def test_eq6_tie_goes_to_the_unsupervised_branch():
    x = torch.zeros(1, 1, 1, 1)
    c = torch.ones(1, 1, 1, 1, requires_grad=True)
    u = torch.ones(1, 1, 1, 1, requires_grad=True)
    losses.balanced_reconstruction_loss(c, u, x).backward()
    assert c.grad.item() == 0 and u.grad.item() != 0  # ">=" in Eq. 6


def test_eq5_intermediate_reconstruction_and_detached_target():
    h_hat = torch.tensor([[1.0, 1.0]], requires_grad=True)
    h = torch.tensor([[0.0, 2.0]], requires_grad=True)
    value = losses.intermediate_reconstruction_loss(h_hat, h)
    assert value.item() == pytest.approx(1.0)
    value.backward()
    assert h.grad is not None and h.grad.abs().sum() > 0
    h.grad = None
    losses.intermediate_reconstruction_loss(h_hat, h, detach_target=True).backward()
    assert h.grad is None


def test_eq7_stability_on_softmax_with_mask():
    logits = torch.zeros(2, 2)
    z = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    # sample 0: ((0.5)^2 + (0.5)^2) / 2 = 0.25; sample 1: 0
    assert losses.stability_loss(logits, z).item() == pytest.approx(0.125)
    assert losses.stability_loss(logits, z, norm="sum").item() == pytest.approx(0.25)
    mask = torch.tensor([False, True])
    assert losses.stability_loss(logits, z, mask).item() == pytest.approx(0.0)


def test_eq2_weighted_sum():
    terms = {"cls": torch.tensor(2.0), "rec": torch.tensor(3.0), "rec_inter_c0": torch.tensor(1.0),
             "rec_inter_u1": torch.tensor(4.0), "stability": torch.tensor(0.01)}
    weights = {"cls": 1.0, "rec": 0.25, "rec_inter": 0.5, "stability": 100.0}
    assert losses.total_loss(terms, weights).item() == pytest.approx(2 + 0.75 + 0.5 * 5 + 1.0)


def test_ramps():
    assert losses.sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5))
    assert losses.sigmoid_rampup(50, 100) == pytest.approx(math.exp(-5 * 0.25))
    assert losses.sigmoid_rampup(200, 100) == 1.0 and losses.sigmoid_rampup(3, 0) == 1.0
    assert losses.cosine_rampdown(0, 10) == 1.0 and losses.cosine_rampdown(10, 10) == pytest.approx(0.0)

    from hybridwrap.config import LossConfig

    L = LossConfig(lambda_rec=0.25, lambda_rec_inter=0.5, rec_rampdown=True, stability_rampup_steps=10)
    w = losses.loss_weights(L, step=5, max_steps=10)
    assert w["rec"] == pytest.approx(0.25 * 0.5) and w["rec_inter"] == pytest.approx(0.5 * 0.5)
    assert w["stability"] == pytest.approx(100 * math.exp(-5 * 0.25))


# ---------------------------------------------------------------------------------------- teachers


def test_mean_teacher_averages_parameters_and_keeps_its_own_batchnorm_statistics():
    """Mean Teacher's update_ema_variables: parameters only; the teacher's statistics come from its own passes."""
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    teacher = MeanTeacher(student, alpha=0.99)  # buffers="own" is the default
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    student.train()(torch.randn(4, 3))  # moves the student's BN running statistics
    teacher.update(student, step=9)  # a = min(1 - 1/10, 0.99) = 0.9
    params = dict(student.named_parameters())
    for k, v in teacher.model.state_dict().items():
        if k in params:
            torch.testing.assert_close(v, 0.9 * before[k] + 0.1 * params[k].detach())
        else:  # running_mean, running_var, num_batches_tracked: untouched by the update
            assert torch.equal(v, before[k]), k
    x = torch.randn(8, 3)
    with torch.no_grad():
        teacher.model.train()(x)  # the teacher's own forward pass in train mode moves its statistics
    bn = teacher.model[1]
    expected = 0.9 * before["1.running_mean"] + 0.1 * teacher.model[0](x).mean(0)
    torch.testing.assert_close(bn.running_mean, expected)
    assert int(bn.num_batches_tracked) == 1
    with pytest.raises(ValueError, match="'own' or 'ema'"):
        MeanTeacher(student, buffers="copy")


def test_mean_teacher_ema_formula_with_averaged_buffers():
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    teacher = MeanTeacher(student, alpha=0.99, buffers="ema")
    before = {k: v.clone() for k, v in teacher.model.state_dict().items()}
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    student.train()(torch.randn(4, 3))  # moves the BN running statistics
    teacher.update(student, step=9)  # a = min(1 - 1/10, 0.99) = 0.9
    a = 0.9
    for k, v in student.state_dict().items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(teacher.model.state_dict()[k], a * before[k] + (1 - a) * v)
        else:
            assert torch.equal(teacher.model.state_dict()[k], v)
    teacher.update(student, step=1000)
    assert teacher.decay(1000) == 0.99 and teacher.decay(0) == 0.0
    assert all(not p.requires_grad for p in teacher.model.parameters())


def test_a_teacher_of_its_own_initialisation_is_drawn_apart_and_leaves_the_student_draws_alone(tiny_config):
    """loss.teacher_init=own: Mean Teacher's and the official code's create_model(ema=True), built like the student."""
    import copy

    from hybridwrap.config import load_config
    from hybridwrap.builder import build_from_config
    from hybridwrap.train.stability import stability_targets

    cfg = load_config(tiny_config(), ["loss.teacher_init=own"])
    torch.manual_seed(0)
    model = build_from_config(copy.deepcopy(cfg.model)).to(memory_format=torch.channels_last)
    state = torch.random.get_rng_state()
    teacher, ensemble = stability_targets(cfg, model, num_samples=10)
    assert ensemble is None and torch.equal(torch.random.get_rng_state(), state)  # the generator was forked
    again, _ = stability_targets(cfg, model, num_samples=10)
    own, student = teacher.model.state_dict(), model.backbone.state_dict()
    assert own.keys() == student.keys()
    for name, param in model.backbone.named_parameters():
        t = own[name]
        torch.testing.assert_close(t, again.model.state_dict()[name])  # one draw per seed
        assert t.shape == param.shape, name
        if param.dim() > 1:  # weights: the same initialisation scheme, another draw (BatchNorm's start at 1 and 0)
            assert not torch.equal(t, param.detach()), name
            assert t.std().item() == pytest.approx(param.detach().std().item(), rel=0.5), name
    conv = next(m for m in teacher.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # the student's memory format is kept
    assert all(not p.requires_grad for p in teacher.model.parameters())

    copied, _ = stability_targets(load_config(tiny_config()), model, num_samples=10)  # the default: a copy
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(copied.model.state_dict()[name], value), name
    te_cfg = load_config(tiny_config(), ["loss.stability=temporal_ensembling"])
    teacher, ensemble = stability_targets(te_cfg, model, num_samples=10)
    assert teacher is None and ensemble.ensemble.shape == (10, cfg.model.num_classes)


def test_temporal_ensembling_update_and_startup_correction():
    te = TemporalEnsembling(num_samples=3, num_classes=2, alpha=0.6)
    idx = torch.tensor([0, 2])
    z, has = te.targets(idx)
    assert not has.any()
    p = torch.tensor([[0.2, 0.8], [1.0, 0.0]])
    q = torch.tensor([[0.6, 0.4], [0.0, 1.0]])
    te.update(idx, p)
    z, has = te.targets(idx)
    assert has.all()
    torch.testing.assert_close(z, p)  # Z = 0.4 p, corrected by 1 - 0.6 = 0.4
    te.update(idx, q)
    z, _ = te.targets(idx)
    expected = (0.6 * 0.4 * p + 0.4 * q) / (1 - 0.6 ** 2)
    torch.testing.assert_close(z, expected)
    assert te.visits.tolist() == [2, 0, 2]


def test_stability_term_sends_gradient_into_the_student():
    """The Mean Teacher consistency must train the student (a known SSL library's never did)."""
    torch.manual_seed(0)
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.125, input_size=16).train()
    teacher = MeanTeacher(model.backbone, alpha=0.99)
    with torch.no_grad():  # make the teacher differ from the student, as it does after a few steps
        for p in teacher.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(4, 3, 16, 16)
    out = model(x)
    z = teacher.targets(x)
    losses.stability_loss(out.logits, z).backward()
    grads = [p.grad for p in model.backbone.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    assert all(p.grad is None for p in teacher.model.parameters())


def test_branch_statistics_and_collapse_detection():
    from hybridwrap.model import HybridOutput
    from hybridwrap.train import branch_statistics, collapsed_branch

    x = torch.zeros(1, 1, 2, 2)
    out = HybridOutput(logits=None, x_hat_c=torch.full_like(x, 0.1), x_hat_u=torch.full_like(x, 0.3))
    out.x_hat = out.x_hat_c + out.x_hat_u
    stats = branch_statistics(out, x)
    assert stats["energy_share_c"] == pytest.approx(0.01 / (0.01 + 0.09))
    assert stats["psnr_x_hat"] == pytest.approx(10 * math.log10(4 / 0.16))
    assert collapsed_branch(stats["energy_share_c"]) is None
    assert collapsed_branch(0.005) == "discriminative (x̂_c)"
    assert collapsed_branch(0.999) == "unsupervised (x̂_u)"
    assert collapsed_branch(None) is None


def test_logit_distance_gradient_reaches_both_heads():
    """Mean Teacher's two-head cost: mean over batch of ||a - b||² / C, symmetric gradient 2(a - b)/(n C)."""
    a = torch.randn(4, 10, requires_grad=True)
    b = torch.randn(4, 10, requires_grad=True)
    loss = losses.logit_distance_loss(a, b)
    assert loss.item() == pytest.approx(((a - b) ** 2).sum().item() / (4 * 10), rel=1e-6)
    loss.backward()
    expected = 2 * (a - b).detach() / (4 * 10)
    torch.testing.assert_close(a.grad, expected)
    torch.testing.assert_close(b.grad, -expected)


def test_two_heads_stability_on_the_second_head_and_logit_distance_in_the_objective():
    from hybridwrap.config import LossConfig

    torch.manual_seed(0)
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.125, input_size=16, stability_head=True).train()
    x = torch.randn(4, 3, 16, 16)
    out = model(x)
    z = torch.softmax(torch.randn(4, 10), 1)
    cfg = LossConfig(reconstruction=False, intermediate=False)
    terms = losses.objective_terms(out, x, torch.tensor([1, -1, -1, -1]), cfg, z)
    assert set(terms) == {"cls", "stability", "logit_distance"}
    torch.testing.assert_close(terms["stability"], losses.stability_loss(out.stability_logits, z))
    assert losses.loss_weights(cfg, 0, 10)["logit_distance"] == 0.01
    # the stability cost reaches the deployed head only through the logit distance, never directly
    model.zero_grad()
    terms["stability"].backward(retain_graph=True)
    assert model.backbone.fc.weight.grad is None or model.backbone.fc.weight.grad.abs().sum() == 0
    assert model.stability_head.weight.grad.abs().sum() > 0
    model.zero_grad()
    terms["logit_distance"].backward()
    assert model.backbone.fc.weight.grad.abs().sum() > 0 and model.stability_head.weight.grad.abs().sum() > 0


def test_temporal_ensembling_rampdown_anneals_lr_and_beta1():
    from hybridwrap.config import TrainConfig
    from hybridwrap.train import optimizer_schedule

    cfg = TrainConfig(max_steps=100)
    cfg.optim.lr, cfg.optim.lr_rampdown_steps = 0.003, 50
    cfg.optim.lr_rampdown_shape, cfg.optim.beta1_rampdown = "gaussian", 0.5
    assert optimizer_schedule(cfg, 10) == (0.003, 0.9)
    lr, beta1 = optimizer_schedule(cfg, 100)
    assert lr == pytest.approx(0.003 * math.exp(-12.5)) and beta1 == pytest.approx(0.5 + 0.4 * math.exp(-12.5))
    lr, beta1 = optimizer_schedule(cfg, 75)
    assert lr == pytest.approx(0.003 * math.exp(-12.5 / 4)) and beta1 == pytest.approx(0.5 + 0.4 * math.exp(-12.5 / 4))
    cfg.optim.lr_rampdown_shape, cfg.optim.beta1_rampdown = "cosine", None
    assert optimizer_schedule(cfg, 75) == (pytest.approx(0.0015), 0.9)


def _official_step(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The official balancing as it ran, rebuilt by hand: the network stores one tensor as both x_hat and x_hat_c
    and adds x̂_u into it in place; the balancing then reads that tensor as x̂_c."""
    x_hat_c_branch, x_hat_u = a * 1.0, b * 1.0  # the two decoders' outputs (non-leaf, as in a network)
    out = {"x_hat": x_hat_c_branch, "x_hat_c": x_hat_c_branch}
    out["x_hat"] += x_hat_u  # in place: out["x_hat_c"] now holds x̂_c + x̂_u too
    per_sample = lambda t: (t - x).pow(2).flatten(1).mean(1)  # noqa: E731
    mse_c, mse_u = per_sample(out["x_hat_c"]), per_sample(x_hat_u)
    to_c = per_sample(out["x_hat_c"] + x_hat_u.detach())
    to_u = per_sample(out["x_hat_c"].detach() + x_hat_u)
    cond = (mse_c > mse_u).float()
    return (cond * to_c + (1 - cond) * to_u).mean()


def test_official_code_balance_reproduces_the_aliased_step_value_and_routing():
    from hybridwrap.losses import balanced_reconstruction_loss

    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 4, 4, generator=g)
    a0 = torch.randn(6, 1, 4, 4, generator=g) * 0.5
    b0 = torch.randn(6, 1, 4, 4, generator=g) * 0.5
    b0[:3] = x[:3] * 0.95  # x̂_u alone is nearly x: the full error x̂_c + x̂_u - x is the larger for these three...
    b0[3:] = x[3:] * 1.02 - a0[3:]  # ...and x̂_c + x̂_u is nearly x for the other three: mixed routing
    grads = {}
    for name, fn in (("official", lambda a, b: _official_step(a, b, x)),
                     ("ours", lambda a, b: balanced_reconstruction_loss(a * 1.0, b * 1.0, x, rule="official_code"))):
        a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
        value = fn(a, b)
        value.backward()
        grads[name] = (float(value.detach()), a.grad.clone(), b.grad.clone())
    (v1, ga1, gb1), (v2, ga2, gb2) = grads["official"], grads["ours"]
    assert abs(v1 - v2) < 1e-6
    assert torch.allclose(ga1, ga2, atol=1e-7) and torch.allclose(gb1, gb2, atol=1e-7)
    to_both = ga2.flatten(1).abs().sum(1) > 0
    assert to_both.tolist() == [True] * 3 + [False] * 3  # the c branch learns only where the full error is larger
    assert bool((gb2.flatten(1).abs().sum(1) > 0).all())  # x̂_u gets a gradient from every sample
    expected = ((a0 + 2 * b0 - x).pow(2).flatten(1).mean(1)).mean()  # the value is ||x̂_c + 2 x̂_u - x||²
    assert abs(v2 - float(expected)) < 1e-6


def test_paper_balance_routes_each_sample_to_one_branch_only():
    from hybridwrap.losses import balanced_reconstruction_loss

    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 1, 4, 4, generator=g)
    a = (x * torch.tensor([0.9, 0.9, 0.1, 0.1]).view(4, 1, 1, 1)).requires_grad_()
    b = (x * torch.tensor([0.1, 0.1, 0.9, 0.9]).view(4, 1, 1, 1) * 0.5).requires_grad_()
    balanced_reconstruction_loss(a, b, x, rule="paper").backward()
    c_gets, u_gets = a.grad.flatten(1).abs().sum(1) > 0, b.grad.flatten(1).abs().sum(1) > 0
    assert (c_gets ^ u_gets).all() and u_gets.tolist() == [True, True, False, False]


def test_an_unknown_balance_rule_is_a_config_error(tiny_config):
    from hybridwrap.config import load_config
    from hybridwrap.errors import ConfigError
    from hybridwrap.train.checks import validate

    cfg = load_config(tiny_config(), ["loss.balance_rule=oficial"])
    with pytest.raises(ConfigError, match="loss.balance_rule must be 'paper' .* or 'official_code'"):
        validate(cfg, 1)


def test_shipped_configs_take_the_balance_rule_of_their_source():
    from hybridwrap.config import load_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    rules = {name: load_config(configs / name).loss.balance_rule for name in
             ("cifar10_convlarge.yaml", "stl10_convlarge.yaml", "quickstart.yaml", "digits.yaml", "mnist5k.yaml",
              "cifar10_shakeshake.yaml", "svhn_shakeshake.yaml", "stl10_places_resnet50.yaml")}
    assert rules == {"cifar10_convlarge.yaml": "paper", "stl10_convlarge.yaml": "paper", "quickstart.yaml": "paper",
                     "digits.yaml": "paper", "mnist5k.yaml": "paper", "cifar10_shakeshake.yaml": "official_code",
                     "svhn_shakeshake.yaml": "official_code", "stl10_places_resnet50.yaml": "official_code"}
    overlay = load_config([configs / "cifar10_convlarge.yaml", configs / "official_code.yaml"])
    assert overlay.loss.balance_rule == "official_code"
    # the teacher's own initialisation: the overlay only; the shipped configs keep the copy their RESULTS rows ran
    assert overlay.loss.teacher_init == "own"
    assert {load_config(configs / name).loss.teacher_init for name in rules} == {"student"}


def _balance_row(tag, rule, config, seed, val, test):
    return {"tag": tag, "balance_rule": rule, "config": config, "preset": "full", "seed": seed, "width": 0.25,
            "labels": 4000, "iterations": 1000, "val_size": 5000, "val_acc": val, "teacher_val_acc": val + 1,
            "test_acc": test, "teacher_test_acc": test + 1, "seconds": 600.0, "device": "cpu (x86_64, 2 cores)",
            "cpu_capability": "AVX512 +AVX512-BF16", "precision": "bf16",
            "command": f"python benchmarks/ablation.py --tag {tag} --seeds {seed}"}


def _official_pairs():
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from rendering import official_pairs

    return official_pairs


def test_the_balance_measurement_renders_paired_by_seed_with_its_conclusion():
    """RESULTS.md's paper vs official_code rows, from the JSON the two sides wrote."""
    pairs = _official_pairs()

    def balance_lines(runs):
        return pairs.option_lines(pairs.BALANCE, runs)

    t1 = ["configs/cifar10_convlarge.yaml"]
    runs = [_balance_row("paper-balance", "paper", t1, s, 40.0 + s, 41.0) for s in range(3)]
    runs += [_balance_row("official-balance", "official_code", t1 + ["configs/official_balance.yaml"], s,
                          40.0 + s + d, 40.0) for s, d in zip(range(3), (2.0, 3.0, 2.5))]
    runs += [_balance_row("table3", "paper", ["configs/cifar10_shakeshake.yaml"], 0, 20.0, 20.0)]  # not a pair
    text = "\n".join(balance_lines(runs))
    assert "### Table 1's config (full)" in text and "Table 3's network" not in text
    assert "| paper | 41.00 ± 1.00 | 42.00 ± 1.00 | 41.00 ± 0.00 | 42.00 ± 0.00 | 600 | 3 |" in text
    assert "student validation 2.50 ± 0.50 (3/3)" in text and "student test -1.00 ± 0.00 (0/3)" in text
    assert "On validation: official_code ahead of paper beyond the seed-to-seed spread at this budget." in text
    tied = [dict(r, val_acc=r["val_acc"] + (-2.5 if r["seed"] == 0 else 0)) if r["tag"] == "official-balance" else r
            for r in runs]
    assert "no difference beyond the seed-to-seed spread" in "\n".join(balance_lines(tied))
    assert balance_lines([r for r in runs if r["tag"] == "table3"]) == []
    wrong = [dict(r, balance_rule="paper") if r["tag"] == "official-balance" else r for r in runs]
    with pytest.raises(AssertionError, match="official-balance: a run whose loss.balance_rule is not 'official_code'"):
        balance_lines(wrong)


def test_the_teacher_start_measurement_renders_its_pair_and_reads_older_runs_as_a_copy():
    """loss.teacher_init student vs own on Table 3's network; a run recorded before the option existed ran a copy."""
    pairs = _official_pairs()
    t3 = ["configs/cifar10_shakeshake.yaml"]
    student = [_balance_row("table3-teacher-student", "official_code", t3, s, 19.0 + s, 19.0) for s in range(2)]
    own = [dict(_balance_row("table3-teacher-own", "official_code", t3 + ["configs/teacher_own.yaml"], s, 18.0 + s,
                             19.5), teacher_init="own") for s in range(2)]
    text = "\n".join(pairs.option_lines(pairs.TEACHER_INIT, student + own))
    assert text.startswith("## The teacher's start: a copy of the student or its own initialisation")
    assert "| loss.teacher_init | student val acc |" in text and "| own | 18.50 ± 0.71 |" in text
    assert "own − student, paired by seed: student validation -1.00 ± 0.00 (0/2)" in text
    assert "On validation: own behind student beyond the seed-to-seed spread at this budget." in text
    with pytest.raises(AssertionError, match="table3-teacher-own: a run whose loss.teacher_init is not 'own'"):
        pairs.option_lines(pairs.TEACHER_INIT, student + [dict(r, teacher_init="student") for r in own])
    # the pairs' runs are nobody else's reference, and both options render into one list
    assert pairs.is_pair_tag("table3-teacher-own") and pairs.is_pair_tag("official-balance")
    assert not pairs.is_pair_tag("table3")
    assert pairs.official_pair_lines(student + own) == pairs.option_lines(pairs.TEACHER_INIT, student + own)


def test_the_initial_teacher_weighs_one_over_t_plus_one_until_alpha_caps_the_decay():
    """docs/paper_mapping.md's bound for loss.teacher_init: the start's share after t updates is prod min(s/(s+1), α),
    1/(t+1) up to the cap, then α per step: with α = 0.97 (Table 3), 1/11 at step 10, under 1e-3 from step 144."""
    from conftest import REPO

    from hybridwrap.config import load_config

    table3 = load_config(REPO / "configs" / "cifar10_shakeshake.yaml").loss  # the values the mapping's bound uses
    assert (table3.ema_decay, table3.stability_rampup_steps) == (0.97, 3770)
    start, student = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(start.weight)
    torch.nn.init.zeros_(student.weight)  # the student stays at 0: the teacher's weight is the start's share
    teacher = MeanTeacher(student, alpha=table3.ema_decay, start=start)
    shares = {}
    for step in range(1, 301):
        teacher.update(student, step)
        shares[step] = teacher.model.weight.item()
    assert shares[10] == pytest.approx(1 / 11) and shares[32] == pytest.approx(1 / 33)
    assert shares[5] == pytest.approx(1 / 6)  # where the CPU budget's stability ramp (scaled to 5 steps) is full
    assert shares[300] == pytest.approx(0.97 ** (300 - 32) / 33, rel=1e-4)  # float32 over 268 steps
    assert min(t for t, s in shares.items() if s < 1e-3) == 144
    assert losses.sigmoid_rampup(144, table3.stability_rampup_steps) < 0.01  # Table 3's stability ramp: under 1 %
