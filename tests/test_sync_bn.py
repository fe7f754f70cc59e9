"""--sync-bn (timm's), refused where torch's SyncBatchNorm cannot run."""

import subprocess

import pytest
import torch

import hybridwrap
from conftest import ENV_TESTS, cli
from hybridwrap import ConfigError
from hybridwrap.config import TrainConfig
from hybridwrap.teachers import MeanTeacher
from hybridwrap.train.checks import validate
from hybridwrap.train.process import sync_batchnorm


def _norms(module):
    return {type(m).__name__ for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


def test_sync_bn_converts_every_branch_and_the_teacher_and_keeps_the_weight_names():
    model = hybridwrap.wrap("convlarge", num_classes=10, width=0.125)
    names = list(model.state_dict())
    converted = sync_batchnorm(model)
    for part in (converted.backbone, converted.encoder_u, converted.decoder_c, converted.decoder_u):
        assert _norms(part) == {"SyncBatchNorm"}
    assert list(converted.state_dict()) == names  # checkpoints and saved weights are unchanged
    assert _norms(MeanTeacher(converted.backbone).model) == {"SyncBatchNorm"}


@pytest.mark.parametrize("world,gpu,why", [(2, False, "the processes run on CPU"), (1, True, "a single process"),
                                           (1, False, "the processes run on CPU")])
def test_sync_bn_is_refused_without_several_gpu_processes(world, gpu, why):
    cfg = TrainConfig()
    cfg.model.sync_bn = True
    with pytest.raises(ConfigError, match=f"model.sync_bn \\(--sync-bn\\).*{why}.*drop --sync-bn"):
        validate(cfg, world, accelerator=gpu)
    validate(cfg, 2, accelerator=True)  # several GPU processes: accepted


def test_cli_sync_bn_on_cpu_is_one_line_and_leaves_no_run(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(cli("train", "--sync-bn", "--output-dir", str(out), "--max-steps", "1"),
                          capture_output=True, text=True, env=ENV_TESTS)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "hybridwrap: error: model.sync_bn" in done.stderr
    assert not out.exists()
