"""The precision comes from the hardware this process runs on, and the start-up line says why."""

import json
import logging
import re

import pytest

from conftest import write_config
from hybridwrap import hardware
from hybridwrap.config import load_config
from hybridwrap.train import train


@pytest.fixture
def cpu(monkeypatch):
    def set_cpu(native_bf16: bool, capability: str):
        monkeypatch.setattr(hardware, "cpu_native_bf16", lambda: native_bf16)
        monkeypatch.setattr(hardware, "cpu_capability", lambda: capability)
    return set_cpu


def test_auto_on_a_cpu_without_native_bf16_is_fp32_and_says_why(cpu):
    cpu(False, "AVX2 (no native bf16)")
    precision, why = hardware.resolve_precision("auto", cuda=False)
    assert precision == "no" and "AVX2 (no native bf16)" in why and "emulate bf16" in why


def test_auto_on_a_cpu_with_native_bf16_is_bf16(cpu):
    cpu(True, "AVX512 +AVX512-BF16 +AMX")
    assert hardware.resolve_precision("auto", cuda=False) == ("bf16", "auto: this CPU computes bf16 natively "
                                                                      "(AVX512 +AVX512-BF16 +AMX)")


def test_explicit_bf16_on_a_cpu_without_it_is_kept_with_the_reason(cpu):
    cpu(False, "AVX2 (no native bf16)")
    precision, why = hardware.resolve_precision("bf16", cuda=False)
    assert precision == "bf16" and "emulates bf16" in why and "mixed_precision: auto" in why
    assert hardware.resolve_precision("no", cuda=False) == ("no", "set explicitly")


@pytest.mark.parametrize("bf16,expected", [(True, "bf16"), (False, "fp16")])
def test_auto_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch, bf16, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Test GPU")
    precision, why = hardware.resolve_precision("auto", cuda=True)
    assert precision == expected and "Test GPU" in why


def test_the_cpu_is_described_as_torch_sees_it(monkeypatch):
    import torch

    described = hardware.cpu_capability()
    assert described.split()[0] == torch.backends.cpu.get_cpu_capability()
    assert ("(no native bf16)" in described) == (not hardware.cpu_native_bf16())
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # both cases, on any machine
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    assert hardware.cpu_capability() == "AVX2 (no native bf16)"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert hardware.cpu_capability() == "AVX2 +AVX512-BF16"


@pytest.mark.parametrize("native,used,line", [
    (False, "no", "precision fp32 (auto: fp32, since this CPU (AVX2 (no native bf16)) would emulate bf16"),
    (True, "bf16", "precision bf16 (auto: this CPU computes bf16 natively (AVX512 +AVX512-BF16 +AMX))"),
])
def test_training_picks_the_precision_from_the_cpu_and_logs_why(cpu, tmp_path, native, used, line):
    cpu(native, "AVX512 +AVX512-BF16 +AMX" if native else "AVX2 (no native bf16)")
    cfg = load_config(write_config(tmp_path / "c.yaml", max_steps=2, eval_every=100, checkpoint_every=100,
                                   mixed_precision="auto"))
    cfg.output_dir = str(tmp_path / "run")
    metrics = train(cfg)
    assert metrics["precision"] == used
    # the run's resolved config records the precision it trained in; the caller's config still asks for auto
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["mixed_precision"] == used
    assert cfg.mixed_precision == "auto"
    log = (tmp_path / "run" / "train.log").read_text()
    assert line in log and "evaluate every 2, checkpoint every 2" in log  # intervals capped at max_steps


def test_explicit_bf16_on_a_cpu_without_it_warns_once(cpu, tmp_path):
    cpu(False, "AVX2 (no native bf16)")
    cfg = load_config(write_config(tmp_path / "c.yaml", max_steps=1, eval_every=100, checkpoint_every=100,
                                   mixed_precision="bf16"))
    cfg.output_dir = str(tmp_path / "run")
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # the project's logger (the CLI may have stopped it propagating to pytest's)
    logging.getLogger("hybridwrap").addHandler(handler)
    try:
        train(cfg)
    finally:
        logging.getLogger("hybridwrap").removeHandler(handler)
    said = [r.getMessage() for r in records if "emulates bf16" in r.getMessage()]
    assert len(said) == 1 and re.search("mixed_precision=bf16 set explicitly; this CPU .* emulates bf16", said[0])
