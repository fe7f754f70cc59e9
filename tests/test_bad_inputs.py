"""The bad-input catalogue: every user-facing mistake gets one ``hybridwrap: error:`` line that names the fix,
its own exit status (2 config, 3 data, 4 checkpoint, 5 Hub), no traceback, and leaves every file of an existing
run as it was.

Commands run in-process through ``hybridwrap.cli.main`` (fast); the two multi-process cases run under
``hybridwrap launch --multi_gpu --num_processes 2`` (accelerate launch) on CPU.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

import hybridwrap
from conftest import ENV_TESTS, free_port, write_config
from hybridwrap.cli import main
from hybridwrap.config import load_config
from hybridwrap.errors import CheckpointError, ConfigError, HubError, UnknownBackboneError, UnsupportedBackboneError
from hybridwrap.train import train

CONFIG, DATA, CHECKPOINT, HUB = 2, 3, 4, 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished tiny run (Mean Teacher), a finished run without teacher, an unfinished run, and a scratch root."""
    root = tmp_path_factory.mktemp("bad-inputs")
    made = {}
    for name, changes, stop_at in (("run", {}, None), ("noteacher", {"preset": "classification"}, None),
                                   ("unfinished", {"max_steps": 4}, 2)):
        cfg = load_config(write_config(root / f"{name}.yaml", max_steps=changes.get("max_steps", 3), eval_every=100,
                                       checkpoint_every=2, **{k: v for k, v in changes.items() if k != "max_steps"}))
        cfg.output_dir = str(root / name)
        train(cfg, stop_at=stop_at)
        made[name] = root / name
    for split in ("train", "test"):
        for label in ("a", "b"):
            (root / "empty_classes" / split / label).mkdir(parents=True)
    from PIL import Image

    for name, missing in (("one_empty_class", ("train", "dog")), ("no_test_class", ("test", "dog"))):
        for split in ("train", "test"):
            for label in ("cat", "dog", "fox"):
                (root / name / split / label).mkdir(parents=True)
                if (split, label) != missing:
                    Image.new("RGB", (8, 8)).save(root / name / split / label / "a.png")
    shutil.copytree(root / "one_empty_class", root / "broken_image")
    Image.new("RGB", (8, 8)).save(root / "broken_image" / "train" / "dog" / "a.png")
    (root / "broken_image" / "train" / "cat" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    (root / "broken.yaml").write_text("max_steps: [1, 2\n")
    (root / "tiny.yaml").write_text((root / "run.yaml").read_text())
    made["root"] = root
    return made


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "scratch" not in p.parts}


def _run_cli(argv, capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# (case id, argv with {run}/{noteacher}/{unfinished}/{root} placeholders, exit status, what the message must say)
CLI_CASES = [
    # train: config
    ("set-typo", ["train", "--set", "loss.lamda_rec=1"], CONFIG, r"Unknown config key 'loss\.lamda_rec'.*Did you mean loss\.lambda_rec"),
    ("set-no-equals", ["train", "--set", "nonsense"], CONFIG, r"must look like section\.field=value"),
    ("set-bad-type", ["train", "--set", "data.num_labels=abc"], CONFIG, r"data\.num_labels must be of type int"),
    ("unknown-preset", ["train", "--preset", "fulll"], CONFIG, r"Unknown preset 'fulll'\. Choose one of: .*full"),
    ("unknown-backbone", ["train", "--set", "model.backbone=convlarg"], CONFIG, r"Did you mean: convlarge"),
    # found when each run builds its model, in the runs of HybridNet and the baseline started side by side
    ("backbone-kwargs-unknown", ["train", "--set", "model.backbone_kwargs={{bogus: 1}}"], CONFIG,
     r"convlarge does not take backbone_kwargs bogus"),
    ("max-steps-0", ["train", "--max-steps", "0"], CONFIG, r"max_steps must be >= 1"),
    ("seeds-0", ["train", "--seeds", "0"], CONFIG, r"seeds must be >= 1"),
    ("set-contradicts-preset", ["train", "--set", "loss.balance=false"], CONFIG,
     r"--set loss\.balance=false contradicts the preset 'full', which sets loss\.balance=true \(.*\)\. Choose a preset "
     r"with loss\.balance=false \(classification, .*table2_d.*\), or drop the --set\."),
    ("set-stability-off-in-full", ["train", "--set", "loss.stability=none"], CONFIG,
     r"--set loss\.stability=none contradicts the preset 'full', which uses the stability term"),
    ("run-processes-negative", ["train", "--set", "run_processes=-1"], CONFIG,
     r"run_processes must be 0 \(decided from the hardware\), 1 \(one run at a time\) or more, got -1"),
    ("run-processes-not-a-number", ["train", "--set", "run_processes=two"], CONFIG, r"run_processes must be of type int"),
    ("budget-passes-0", ["train", "--set", "budget_passes=0"], CONFIG,
     r"budget_passes must be > 0 \(passes over the unlabeled pool\), or null to train max_steps steps; got 0"),
    ("budget-passes-stream", ["train", "--set", "budget_passes=5", "--set", "data.streaming=true"], CONFIG,
     r"a stream \(data\.streaming\) has no size for: set max_steps \(--max-steps N\) and budget_passes=null"),
    ("precision", ["train", "--set", "mixed_precision=fp32"], CONFIG, r"mixed_precision must be auto, no, bf16 or fp16"),
    ("log-level", ["train", "--set", "log_level=loud"], CONFIG, r"log_level must be one of quiet, info, verbose"),
    ("missing-config", ["train", "--config", "{root}/missing.yaml"], CONFIG, r"not found\. Pass a YAML file"),
    ("broken-yaml", ["train", "--config", "{root}/broken.yaml"], CONFIG, r"broken\.yaml"),
    ("resume-no-run", ["train", "--resume", "--output-dir", "{root}/empty_classes"], CONFIG,
     r"--resume continues a run, but \S*empty_classes holds no run \(looked for"),
    ("resume-missing", ["train", "--resume", "--output-dir", "{root}/scratch/nope"], CONFIG,
     r"--resume continues a run, but \S*nope does not exist.*Drop --resume"),
    ("kwarg-no-value", ["train", "--config", "{root}/tiny.yaml", "--set", "model.backbone_kwargs={{width:0.25}}",
                        "--output-dir", "{root}/scratch/k"], CONFIG, r"has no value\. YAML needs a space after the colon"),
    ("balance-rule", ["train", "--config", "{root}/tiny.yaml", "--set", "loss.balance_rule=official",
                      "--output-dir", "{root}/scratch/b"], CONFIG, r"loss\.balance_rule must be 'paper'"),
    ("teacher-init", ["train", "--config", "{root}/tiny.yaml", "--set", "loss.teacher_init=random",
                      "--output-dir", "{root}/scratch/ti"], CONFIG, r"loss\.teacher_init must be 'student' .* or 'own'"),
    ("existing-run", ["train", "--config", "{root}/tiny.yaml", "--output-dir", "{run}"], CONFIG,
     r"already holds a run\. Pass --resume"),
    ("resume-other-config", ["train", "--config", "{root}/tiny.yaml", "--output-dir", "{run}", "--resume",
                             "--set", "loss.lambda_rec=0.5"], CHECKPOINT, r"another config \(loss\.lambda_rec: .*\)"),
    ("resume-other-backbone", ["train", "--resume", "--output-dir", "{run}", "--backbone", "resnet18"], CHECKPOINT,
     r"Cannot resume \S*run: the command asks for another run than the one it holds \(--backbone: the run has "
     r"'convlarge', the command asks 'resnet18'\)"),
    ("resume-other-dataset", ["train", "--resume", "--output-dir", "{run}", "--dataset", "imagefolder", "--data-path",
                              "{root}/one_empty_class"], CHECKPOINT,
     r"--dataset: the run has 'digits', the command asks 'imagefolder'; --data-path: the run has None"),
    ("resume-baseline-it-never-had", ["train", "--resume", "--output-dir", "{run}", "--baseline"], CHECKPOINT,
     r"--baseline: the run has False, the command asks True"),
    ("resume-other-preset", ["train", "--resume", "--output-dir", "{run}", "--preset", "classification"], CHECKPOINT,
     r"--preset: the run has 'full', the command asks 'classification'"),
    ("resume-other-seed", ["train", "--resume", "--output-dir", "{unfinished}", "--seed", "4"], CHECKPOINT,
     r"--seed: the run has 0, the command asks 4\)\. Resume it as it is"),
    ("quiet-and-verbose", ["train", "--quiet", "--verbose"], CONFIG, r"not allowed with argument"),
    # train: data
    ("imagefolder-no-path", ["train", "--dataset", "imagefolder"], DATA, r"needs --data-path ROOT"),
    ("npz-no-path", ["train", "--dataset", "npz"], DATA, r"pass --data-path /path/to/file\.npz"),
    ("npz-missing", ["train", "--dataset", "npz", "--data-path", "{root}/nope.npz"], DATA, r"not found\. Pass --data-path"),
    ("empty-class-folders", ["train", "--dataset", "imagefolder", "--data-path", "{root}/empty_classes"], DATA,
     r"No images under .*train/<class>/"),
    ("imagefolder-missing-root", ["train", "--dataset", "imagefolder", "--data-path", "{root}/scratch/no_such_folder"],
     DATA, r"no_such_folder' does not exist: pass --data-path with the folder that holds train/<class>/"),
    ("imagefolder-empty-class", ["train", "--dataset", "imagefolder", "--data-path", "{root}/one_empty_class"], DATA,
     r"1 class\(es\) of \S*train have no image in \S*train/: dog; put images in them or remove them"),
    ("imagefolder-class-missing-from-test", ["train", "--dataset", "imagefolder", "--data-path", "{root}/no_test_class"],
     DATA, r"1 class\(es\) of \S*train have no image in \S*test/: dog; add test images for them"),
    ("imagefolder-unreadable-image", ["train", "--dataset", "imagefolder", "--data-path", "{root}/broken_image"], DATA,
     r"1 unreadable image file\(s\): \S*broken_image/train/cat/b\.png \(every one, with the reason: \S*\.txt\)\. "
     r"Remove or replace them, or pass --skip-bad-images to train without them\."),
    ("unknown-dataset", ["train", "--dataset", "mnistt"], CONFIG, r"Unknown dataset 'mnistt'\. Use mnist5k, digits"),
    ("batch-0", ["train", "--set", "data.labeled_batch_size=0"], DATA, r"must be at least 1"),
    ("channels", ["train", "--set", "model.in_chans=3"], DATA, r"Set model\.in_chans=1"),
    ("num-classes", ["train", "--set", "model.num_classes=5"], DATA, r"Set model\.num_classes=10"),
    # tune
    ("tune-bad-grid", ["tune", "--grid", "loss.lambda_rec"], CONFIG, r"--grid"),
    ("tune-unknown-key", ["tune", "--grid", "loss.lamda=1,2"], CONFIG, r"Did you mean loss\.lambda"),
    ("tune-val-size-0", ["tune", "--val-size", "0"], CONFIG, r"--val-size must be at least 1"),
    ("tune-metric", ["tune", "--metric", "acc"], CONFIG, r"val_acc"),
    # eval
    ("eval-missing", ["eval", "{root}/nope"], CHECKPOINT, r"neither a run directory nor a Hub repo id"),
    ("eval-unfinished", ["eval", "{unfinished}"], CHECKPOINT, r"has not finished training.*hybridwrap train --resume --output-dir \S*unfinished"),
    ("eval-channels", ["eval", "{run}", "--dataset", "npz", "--data-path", "{root}/rgb.npz"], DATA,
     r"3 channel\(s\) but the model takes 1: evaluate it on a 1-channel dataset"),
    ("eval-npz-missing", ["eval", "{run}", "--dataset", "npz", "--data-path", "{root}/nope.npz"], DATA, r"not found"),
    # push / export / card / visualize
    ("push-bad-repo", ["push", "{run}", "--repo-id", "no slash"], CONFIG, r"not of the form namespace/name"),
    ("push-no-token", ["push", "{run}", "--repo-id", "me/x"], CONFIG, r"No Hugging Face token: pass --token"),
    ("push-unfinished", ["push", "{unfinished}", "--repo-id", "me/x"], CHECKPOINT, r"has not finished training.*hybridwrap train --resume --output-dir \S*unfinished"),
    ("push-offline", ["push", "{run}", "--repo-id", "me/x", "--token", "t"], HUB,
     r"Hub at http://127\.0\.0\.1:9 cannot be reached.*push it later with the same command"),
    ("export-missing", ["export", "{root}/nope"], CHECKPOINT, r"neither a run directory"),
    ("export-teacher", ["export", "{noteacher}", "--teacher", "--output-dir", "{root}/scratch/e"], CHECKPOINT,
     r"drop --teacher"),
    ("export-offline", ["export", "{run}", "--repo-id", "me/x", "--token", "t", "--output-dir", "{root}/scratch/o"],
     HUB, r"cannot be reached.*hf upload me/x"),
    ("card-unfinished", ["card", "{unfinished}"], CHECKPOINT, r"has not finished training.*hybridwrap train --resume --output-dir \S*unfinished"),
    ("visualize-num-0", ["visualize", "{run}", "--num", "0"], CONFIG, r"--num"),
    # predict / config
    ("predict-no-image", ["predict", "{run}", "{root}/empty_classes"], DATA,
     r"No image found in \S*empty_classes \(looked for .*\.png"),
    ("predict-missing-file", ["predict", "{run}", "{root}/scratch/nope.png"], DATA,
     r"nope\.png does not exist\. Pass image files, folders or glob patterns"),
    ("predict-pattern-matches-nothing", ["predict", "{run}", "{root}/scratch/*.jpg"], DATA,
     r"\*\.jpg' matches no file\. .*quote the pattern"),
    ("predict-batch-0", ["predict", "{run}", "{root}/one_empty_class", "--batch-size", "0"], CONFIG,
     r"--batch-size must be at least 1, got 0"),
    ("config-set-typo", ["config", "--show", "--set", "loss.lamda_rec=1"], CONFIG, r"Did you mean loss\.lambda_rec"),
    ("visualize-unfinished", ["visualize", "{unfinished}"], CHECKPOINT, r"has not finished training.*hybridwrap train --resume --output-dir \S*unfinished"),
    ("summary-unknown", ["summary", "resnet05"], CONFIG, r"Did you mean: .*resnet50"),
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(case, runs, capsys, monkeypatch, tmp_path):
    name, argv, code, fix = case
    import numpy as np

    np.savez(runs["root"] / "rgb.npz", x_train=np.zeros((4, 16, 16, 3), np.uint8), y_train=np.zeros(4, np.int64),
             x_test=np.zeros((4, 16, 16, 3), np.uint8), y_test=np.zeros(4, np.int64))
    if name.endswith("offline"):
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    places = {k: str(v) for k, v in runs.items()}
    argv = [a.format(**places) for a in argv]
    if argv[0] in ("train", "tune") and "--output-dir" not in argv:
        argv += ["--output-dir", str(tmp_path / "out")] if argv[0] == "train" else ["--tune-dir", str(tmp_path / "t")]
    before = _digest(runs["root"])
    status, out, err = _run_cli(argv, capsys)
    assert status == code, err
    lines = [line for line in err.splitlines() if line.startswith("hybridwrap: error:")]
    assert len(lines) == 1 or (status == CONFIG and "usage:" in err), err  # argparse errors print usage first
    assert "Traceback" not in out + err
    import re

    assert re.search(fix, err), err
    assert _digest(runs["root"]) == before, "a file of an existing run changed"
    assert not (tmp_path / "out").exists(), "a failed start left a run directory behind"


def _edited(runs, tmp_path, edit):
    target = tmp_path / "model"
    shutil.copytree(runs["run"] / "model", target)
    cfg = json.loads((target / "config.json").read_text())
    edit(cfg)
    (target / "config.json").write_text(json.dumps(cfg))
    return target


API_CASES = [
    ("from-pretrained-missing-path", lambda r, t: hybridwrap.from_pretrained(str(t / "nope")), CheckpointError,
     r"not a directory, and not a Hub repo id"),
    ("config-typo", lambda r, t: hybridwrap.from_pretrained(_edited(r, t, lambda c: c["model"].__setitem__(
        "num_clases", c["model"].pop("num_classes")))), CheckpointError, r"rename it to .*num_classes"),
    ("config-no-backbone", lambda r, t: hybridwrap.from_pretrained(_edited(r, t, lambda c: c["model"].pop("backbone"))),
     CheckpointError, r"names no model\.backbone"),
    ("config-newer-format", lambda r, t: hybridwrap.from_pretrained(_edited(
        r, t, lambda c: c.update(hybridwrap_version="9.0.0", format_version=2))), CheckpointError,
     r"written by hybridwrap 9\.0\.0, newer than this .*pip install -U hybridwrap"),
    ("config-format-2", lambda r, t: hybridwrap.from_pretrained(_edited(r, t, lambda c: c.__setitem__("format_version", 2))),
     CheckpointError, r"format_version 2: .*never wrote that format: the file was edited"),
    ("plugin-not-installed", lambda r, t: hybridwrap.from_pretrained(_edited(
        r, t, lambda c: (c["model"].__setitem__("backbone", "mynet"), c.__setitem__("backbone_package", "my-plugin")))),
     CheckpointError, r"pip install my-plugin"),
    ("truncated-weights", lambda r, t: (_edited(r, t, lambda c: None), (t / "model" / "model.safetensors").write_bytes(b"x"),
                                        hybridwrap.from_pretrained(t / "model")), CheckpointError, r"truncated or corrupted"),
    ("hub-offline-cache", lambda r, t: hybridwrap.from_pretrained("me/never-downloaded", local_files_only=True), HubError,
     r"not in the local cache.*save_pretrained"),
    ("wrap-unknown", lambda r, t: hybridwrap.wrap("convlarg", num_classes=10), UnknownBackboneError,
     r"Did you mean: convlarge, (?!.*convlarge,)"),  # each suggestion once
    ("installed-package-lacks-backbone", lambda r, t: hybridwrap.from_pretrained(_edited(
        r, t, lambda c: (c["model"].__setitem__("backbone", "convlarge_v9"), c.__setitem__("backbone_package",
                                                                                            "hybridwrap")))),
     CheckpointError, r"which the installed hybridwrap does not register.*`hybridwrap backbones`"),
    ("wrap-vit", lambda r, t: hybridwrap.wrap("vit_tiny_patch16_224", num_classes=10), UnsupportedBackboneError,
     r"spatial"),
    ("wrap-num-classes", lambda r, t: hybridwrap.wrap("convlarge", num_classes=0), ConfigError, r"num_classes"),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(case, runs, tmp_path):
    import re

    name, call, error, fix = case
    before = _digest(runs["root"])
    with pytest.raises(error) as info:
        call(runs, tmp_path)
    assert re.search(fix, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
    assert _digest(runs["root"]) == before


@pytest.mark.parametrize("argv,code,fix", [
    (["train", "--config", "{root}/tiny.yaml", "--output-dir", "{run}"], CONFIG, "already holds a run"),
    (["train", "--config", "{root}/tiny.yaml", "--dataset", "npz", "--data-path", "{root}/nope.npz"], DATA, "not found"),
], ids=["existing-run", "missing-data"])
def test_two_processes_one_error_line_no_traceback(argv, code, fix, runs, tmp_path):
    places = {k: str(v) for k, v in runs.items()}
    argv = [a.format(**places) for a in argv]
    if "--output-dir" not in argv:
        argv += ["--output-dir", str(tmp_path / "out")]
    before = _digest(runs["root"])
    temporary = tmp_path / "tmp"  # where rank 0 leaves its exit status for rank 1
    temporary.mkdir()
    done = subprocess.run([sys.executable, "-m", "hybridwrap.cli", "launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--main_process_port", str(free_port()),
                           "--mixed_precision", "no", "--dynamo_backend", "no", *argv],
                          capture_output=True, text=True, env={**ENV_TESTS, "OMP_NUM_THREADS": "1", "TMPDIR": str(temporary)},
                          timeout=300)
    assert done.returncode == code, done.stderr[-3000:]
    assert done.stderr.count("hybridwrap: error:") == 1, done.stderr  # rank 0 speaks, rank 1 exits quietly
    assert fix in done.stderr
    assert "Traceback" not in done.stdout + done.stderr and "ChildFailedError" not in done.stderr
    assert _digest(runs["root"]) == before
    assert not (tmp_path / "out").exists()
    assert not list(temporary.glob("*.exit"))  # the launcher removes it once every rank has ended


# commands without a bad-input case here: a listing that takes no input, and the launcher (the launches above)
NO_CASE = {"backbones", "launch"}


def test_the_catalogue_covers_every_command_and_every_exit_status():
    """A command added without a bad-input case, or an exit status that no case checks any more, fails here."""
    commands = set(_subcommands())
    assert NO_CASE <= commands
    assert commands - NO_CASE - {argv[0] for _, argv, _, _ in CLI_CASES} == set()
    assert {code for _, _, code, _ in CLI_CASES} == {CONFIG, DATA, CHECKPOINT, HUB}


def test_a_rank_that_fails_because_rank_0_stopped_exits_quietly_with_its_status(monkeypatch, tmp_path, capsys):
    """Rank 0 stops on a user error; rank 1 then fails at its next collective (a closed connection). Rank 1 must
    not print that traceback: it exits with rank 0's status, which rank 0 left beside the launch."""
    from hybridwrap.command import run_user_command
    from hybridwrap.errors import DataError

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test-run")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")

    def user_error():
        raise DataError("no images; pass --data-path")

    assert run_user_command(user_error) == DATA
    assert capsys.readouterr().err == "hybridwrap: error: no images; pass --data-path\n"

    monkeypatch.setenv("RANK", "1")

    def peer_gone():
        raise RuntimeError("[gloo] Connection closed by peer")

    assert run_user_command(peer_gone) == DATA
    assert capsys.readouterr().err == ""
    assert run_user_command(user_error) == DATA  # a user error of its own: quiet too, rank 0 said it
    assert capsys.readouterr().err == ""

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "another-launch")  # no word from rank 0: a real bug keeps its traceback
    with pytest.raises(RuntimeError, match="Connection closed"):
        run_user_command(peer_gone)


def _subcommands() -> dict:
    """The parser of each command, as main() builds them."""
    import argparse

    from hybridwrap import cli

    parsers = {}
    original = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):  # the full parser, as main() builds it
        parsers["main"] = self
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = capture
    try:
        with pytest.raises(SystemExit):
            cli.main(["backbones"])
    finally:
        argparse.ArgumentParser.parse_args = original
    return next(a for a in parsers["main"]._actions if isinstance(a, argparse._SubParsersAction)).choices


def test_every_option_of_every_command_has_help():
    import argparse

    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, parser in _subcommands().items() if name != "launch"
               for action in parser._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, missing


def test_plain_accelerate_launch_workers_print_one_error_line(runs, tmp_path):
    """Under plain `accelerate launch`, rank 0 prints the one line and rank 1 nothing. What follows is torch's
    launcher re-raising the workers' exit (ChildFailedError): its own traceback, which no worker can prevent;
    `hybridwrap launch` (above) is the same launcher without it."""
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--main_process_port", str(free_port()),
                           "--mixed_precision", "no", "--dynamo_backend", "no",
                           "-m", "hybridwrap.train", "--config", str(runs["root"] / "tiny.yaml"),
                           "--output-dir", str(runs["run"])],
                          capture_output=True, text=True, env={**ENV_TESTS, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode != 0
    assert done.stderr.count("hybridwrap: error:") == 1 and "already holds a run" in done.stderr
    worker_part = done.stderr.split("ChildFailedError")[0].split("Traceback (most recent call last)")
    assert len(worker_part) <= 2  # at most the launcher's own traceback header, none from a worker
    assert "hybridwrap/" not in "".join(worker_part[1:])  # no frame of hybridwrap's code in it
    assert "exitcode  : 2" in done.stderr  # both workers exited with the config-error status
