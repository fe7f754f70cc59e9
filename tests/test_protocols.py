"""Each shipped config is its source's protocol, and its defaults are what the benchmarks measure."""

import json
import subprocess

import numpy as np
import pytest
import yaml

from conftest import ENV_TESTS, REPO, cli
from hybridwrap import DataError
from hybridwrap.config import SCHEDULE_FIELDS, TrainConfig, load_config, scaled_to, to_dict
from hybridwrap.saved_configs import from_dict
from hybridwrap.data import load_data, make_split
from hybridwrap.data.loader import step_batches
from hybridwrap.losses import linear_rampdown, loss_weights
from hybridwrap.train import optimizer_schedule

CONFIGS = REPO / "configs"
OVERLAYS = ("official_code.yaml", "paper_literal.yaml", "official_balance.yaml", "paper_balance.yaml",
            "teacher_own.yaml")  # layer on a protocol
SHIPPED = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name not in OVERLAYS)
MEAN_TEACHER_RESNET = ["cifar10_shakeshake.yaml", "svhn_shakeshake.yaml", "stl10_places_resnet50.yaml"]
MAPPING = (REPO / "docs" / "paper_mapping.md").read_text()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_names_its_protocol_its_own_output_and_is_documented(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.protocol and "\n" not in cfg.protocol
    assert cfg.output_dir == f"runs/{name[:-len('.yaml')]}"
    assert f"configs/{name}" in MAPPING  # its values' sources are cited in docs/paper_mapping.md
    assert cfg.data.translate is not None or cfg.data.image_size  # translation is set per protocol, not per size


def test_config_show_resolves_the_convlarge_protocol():
    done = subprocess.run(cli("config", "--show", "--config", str(CONFIGS / "cifar10_convlarge.yaml")),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["data"]["translate"] == 2 and shown["data"]["augment"] == "translate_flip"  # TE: ±2 px at 32 px
    assert shown["loss"]["stability"] == "temporal_ensembling" and shown["loss"]["ce_average"] == "labeled"
    assert shown["protocol"].startswith("HybridNet §4.1")
    assert (shown["loss"]["lambda_rec"], shown["loss"]["lambda_rec_inter"]) == (0.25, 0.5)
    assert shown["loss"]["detach_intermediate_targets"] is True
    assert shown["data"]["unlabeled_includes_labeled"] is False


@pytest.mark.parametrize("name", MEAN_TEACHER_RESNET)
def test_mean_teacher_resnet_configs_average_the_cross_entropy_over_the_whole_batch(name):
    cfg = load_config(CONFIGS / name)
    assert cfg.loss.ce_average == "batch" and cfg.loss.stability == "mean_teacher"
    assert cfg.loss.teacher_buffers == "own"


@pytest.mark.parametrize("name", ["cifar10_shakeshake.yaml", "svhn_shakeshake.yaml"])
def test_table3_shakeshake_configs_build_the_official_hybrid_and_schedule(name):
    cfg = load_config(CONFIGS / name)
    m = cfg.model
    assert (m.decoder, m.decoder_c_mode, m.decoder_u_mode) == ("mirror", "transposed", "transposed")
    assert m.backbone_kwargs == {"downsample": "basic"}
    assert (cfg.data.labeled_batch_size, cfg.data.unlabeled_batch_size) == (19, 61)
    epoch = 754  # 46000 unlabeled / 61
    assert cfg.max_steps == 300 * epoch
    assert cfg.loss.stability_rampup_steps == cfg.loss.rec_rampup_steps == 5 * epoch
    assert cfg.loss.rec_inter_rampup_steps == 2 * epoch and cfg.loss.rec_rampdown
    # 0.003 until epoch 180, then linear to 0 at epoch 300
    assert optimizer_schedule(cfg, 0)[0] == pytest.approx(0.003)
    assert optimizer_schedule(cfg, 180 * epoch)[0] == pytest.approx(0.003)
    assert optimizer_schedule(cfg, 240 * epoch)[0] == pytest.approx(0.0015)
    assert optimizer_schedule(cfg, 300 * epoch)[0] == pytest.approx(0.0)


def test_svhn_is_normalised_with_its_own_statistics():
    assert load_config(CONFIGS / "svhn_shakeshake.yaml").data.normalize == "dataset"
    assert load_config(CONFIGS / "svhn_shakeshake.yaml").data.augment == "translate"  # no flips on digits


def test_paper_literal_overlay_is_section_4_1():
    cfg = load_config([CONFIGS / "cifar10_convlarge.yaml", CONFIGS / "paper_literal.yaml"])
    assert (cfg.loss.lambda_rec, cfg.loss.lambda_rec_inter, cfg.loss.lambda_stability) == (1.0, 1.0, 100.0)
    assert cfg.loss.detach_intermediate_targets is False
    assert cfg.data.translate == 2  # everything else stays the protocol's


def test_scaled_to_keeps_every_schedule_in_proportion():
    cfg = scaled_to(load_config(CONFIGS / "cifar10_convlarge.yaml"), 1000)
    assert cfg.max_steps == 1000
    assert cfg.loss.stability_rampup_steps == cfg.optim.lr_rampup_steps == 133  # 80 of 600 epochs
    assert cfg.optim.lr_rampdown_steps == 83  # 50 of 600 epochs
    assert cfg.optim.lr == 0.003 and cfg.loss.lambda_stability == 100.0  # nothing else changes
    assert len(SCHEDULE_FIELDS) == 5


def test_lambda_rec_inter_has_its_own_ramp_up_and_both_ramp_down():
    cfg = load_config(CONFIGS / "cifar10_shakeshake.yaml")
    w = loss_weights(cfg.loss, 1508, cfg.max_steps)  # end of λ_rec_inter's 2-epoch ramp, inside λ_rec's 5
    down = 0.5 * (np.cos(np.pi * 1508 / cfg.max_steps) + 1)
    assert w["rec_inter"] == pytest.approx(0.5 * down)
    assert w["rec"] == pytest.approx(0.25 * np.exp(-5 * (1 - 1508 / 3770) ** 2) * down)
    assert linear_rampdown(0, 10) == 1.0 and linear_rampdown(5, 10) == 0.5 and linear_rampdown(12, 10) == 0.0


def _tiny_data(tmp_path, n=40):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), y_train=np.arange(n) % 4,
             x_test=rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8), y_test=np.arange(8) % 4)
    return path


def test_unlabeled_stream_holds_the_unlabeled_images_only_by_default(tmp_path):
    cfg = TrainConfig()
    cfg.data.dataset, cfg.data.path, cfg.data.num_labels, cfg.data.val_size = "npz", str(_tiny_data(tmp_path)), 8, 4
    data = load_data(cfg.data)
    split = make_split(data.train_y, 4, 8, seed=0, val_size=4)
    pool = step_batches(data, split, cfg.data, 0, False).batches.unlabeled.tolist()
    assert sorted(pool) == sorted(set(range(40)) - set(split.labeled) - set(split.val))
    cfg.data.unlabeled_includes_labeled = True
    pool = step_batches(data, split, cfg.data, 0, False).batches.unlabeled.tolist()
    assert sorted(pool) == sorted(set(range(40)) - set(split.val))
    cfg.data.unlabeled_includes_labeled = False
    every = make_split(data.train_y, 4, 40, seed=0)  # every training image labeled
    with pytest.raises(DataError, match="no unlabeled image is left.*unlabeled_includes_labeled=true"):
        step_batches(data, every, cfg.data, 0, False)


def test_runs_saved_before_the_protocol_fields_resume_with_their_old_meaning():
    old = to_dict(TrainConfig())
    for section, key in (("data", "unlabeled_includes_labeled"), ("loss", "teacher_buffers"), ("model", "mirror_blocks")):
        del old[section][key]
    cfg = from_dict(old)
    assert cfg.data.unlabeled_includes_labeled is True and cfg.loss.teacher_buffers == "ema"
    assert cfg.model.mirror_blocks == "resnet"


def _benchmark_results():
    for path in sorted((REPO / "benchmarks" / "results").glob("ablation-*.json")):
        result = json.loads(path.read_text())
        if "config" in result:  # run from a shipped config (hybridwrap >= 0.3's ablation.py)
            yield path.name, result


def test_default_protocol_benchmarks_carry_no_loss_data_or_model_override():
    """A benchmark of a shipped config measures that config: --set may only name bookkeeping fields, and a
    result tagged as the default protocol (`protocol`) or the §4.1 overlay (`literal`) none at all."""
    seen = 0
    for name, result in _benchmark_results():
        seen += 1
        assert not any(o.split("=")[0].split(".")[0] in ("loss", "data", "model") for o in result["overrides"]), name
        assert all(not c.startswith("/") for c in result["config"]), name  # repository-relative
        if result["tag"] in ("protocol", "literal"):
            assert result["overrides"] == [], name
            expected = ["configs/cifar10_convlarge.yaml"] + (["configs/paper_literal.yaml"] if result["tag"] == "literal" else [])
            assert result["config"] == expected, name
            assert result["cpu_capability"] and result["precision"]
    assert seen  # the Table 1 rerun under the defaults is recorded


def test_summary_shows_the_pairs_and_block_kinds_of_the_table3_network():
    done = subprocess.run(cli("summary", "shakeshake26_2x96d"), capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 0, done.stderr
    assert "decoder mirror" in done.stdout and "3 intermediate pairs per branch" in done.stdout
    levels = [line for line in done.stdout.splitlines() if line.strip().startswith("level")]
    assert [line.split()[2] for line in levels] == ["stem", "stage1", "stage2", "stage3"]
    assert all("blocks=4 x shakeshake" in line for line in levels[1:])
    assert levels[-1].endswith("no pair (h_c)") and all(line.endswith(" pair") for line in levels[:-1])
