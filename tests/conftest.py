import inspect
import os
import re
import select
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml


def free_port() -> int:
    """A TCP port nothing listens on now: the test Hub's, and each multi-process launch's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Everything the session writes outside pytest's tmp_path (the Hub cache, the library's and the launcher's
# temporary files, in this process and in the CLI processes the tests start) goes under one folder, removed at the
# end of the session (pytest_sessionfinish): a test run leaves nothing behind in the machine's temporary folder.
SESSION_TMP = Path(tempfile.mkdtemp(prefix="hybridwrap-tests-"))
(SESSION_TMP / "tmp").mkdir()
os.environ["TMPDIR"] = str(SESSION_TMP / "tmp")

# huggingface_hub reads these when it is imported: set them before anything imports it. Every Hub call of
# the test session goes to the local test server (tests/hub_server.py); the cache and token files live in
# a throw-away HF_HOME; HF_HUB_OFFLINE stays unset so the real download code runs.
HUB_PORT = free_port()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_HOME"] = str(SESSION_TMP / "hf-home")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.pop(var, None)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HUB_TOKEN = "hf_test_token_do_not_leak"
REPO = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPO.parent / "shared" / "data" / "cifar10.npz"
# for subprocesses of the CLI; a PYTHONPATH already set (e.g. benchmarks/no_native_bf16) is kept behind tests/
ENV_TESTS = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH"))
                                                         if p)}

TINY = {
    "preset": "full",
    "max_steps": 4,
    "eval_every": 2,
    "log_every": 2,
    "checkpoint_every": 2,
    "keep_checkpoints": 2,
    "progress_bar": False,
    "mixed_precision": "no",  # exact comparisons are written for fp32; `auto` has its own tests (test_precision.py)
    "model": {"backbone": "convlarge", "in_chans": 1, "input_size": [16, 16],
              "backbone_kwargs": {"width": 0.125}},
    "data": {"dataset": "digits", "image_size": 16, "num_labels": 20, "labeled_batch_size": 4,
             "unlabeled_batch_size": 8, "max_eval_images": 40},
    "loss": {"stability_rampup_steps": 2},
}


def write_config(path: Path, **changes) -> Path:
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    for key, value in changes.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return lambda **changes: write_config(tmp_path / f"cfg{len(list(tmp_path.glob('cfg*')))}.yaml", **changes)


def make_stl10_binary(root: Path, n_train: int = 30, n_test: int = 10, n_unlabeled: int = 40, n_folds: int = 10,
                      fold_size: int = 10) -> dict:
    """A folder laid out like the official ``stl10_binary/`` release, with tiny counts: images stored channel by
    channel in column-major order, labels 1..10 as bytes, class_names.txt and fold_indices.txt."""
    import numpy as np

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    made = {}
    for split, n in (("train", n_train), ("test", n_test), ("unlabeled", n_unlabeled)):
        x = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)  # (N, C, H, W)
        x.transpose(0, 1, 3, 2).tofile(root / f"{split}_X.bin")  # the release's column-major layout
        made[split] = x
        if split != "unlabeled":
            y = (np.arange(n) % 10 + 1).astype(np.uint8)
            y.tofile(root / f"{split}_y.bin")
            made[split + "_y"] = y.astype(np.int64) - 1
    (root / "class_names.txt").write_text("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse",
                                                     "monkey", "ship", "truck"]) + "\n")
    folds = [rng.permutation(n_train)[:fold_size].tolist() for _ in range(n_folds)]
    (root / "fold_indices.txt").write_text("".join(" ".join(map(str, f)) + " \n" for f in folds))
    made["folds"] = folds
    return made


def assert_encoders_hold(model, net, skip: str = "fc.") -> None:
    """E_c and E_u of ``model`` both hold ``net``'s weights, its classifier (``skip``) aside."""
    import torch

    for encoder in (model.backbone, model.encoder_u):
        got = encoder.state_dict()
        for key, value in net.state_dict().items():
            if not key.startswith(skip):
                assert torch.equal(got[key], value), key


def wait_for_output(stream, *texts: str, timeout: float = 180) -> str:
    """Read a child's piped output (``proc.stderr``) until it holds each of ``texts``, and return what was read: the
    child says when it got there, so nothing polls. Fails after ``timeout`` seconds, or when the child closes it."""
    fd, got, deadline = stream.fileno(), b"", time.monotonic() + timeout
    while missing := [t for t in texts if t not in got.decode(errors="replace")]:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"{missing} not printed in {timeout} s: {got[-2000:]}"
        chunk = os.read(fd, 1 << 16)
        assert chunk, f"the process ended before printing {missing}: {got[-2000:]}"
        got += chunk
    return got.decode(errors="replace")


def wait_for_exit(pids: list[int], timeout: float = 30) -> list[int]:
    """The processes of ``pids`` still running after ``timeout`` seconds; the kernel says when each one exits (a pidfd
    turns readable), so nothing polls. Any process, not only a child of this one."""
    fds = {}
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass  # gone already
    deadline = time.monotonic() + timeout
    try:
        while fds and (left := deadline - time.monotonic()) > 0:
            for fd in select.select(list(fds), [], [], left)[0]:
                del fds[fd]
                os.close(fd)
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def cli(*args: str) -> list[str]:
    """The installed console script, run with this interpreter."""
    return [sys.executable, "-m", "hybridwrap.cli", *args]


@pytest.fixture(scope="session")
def hub():
    """The local Hub-compatible server on HF_ENDPOINT (started once; tests may stop/start it)."""
    from hub_server import FakeHub

    server = FakeHub(HUB_PORT, token=HUB_TOKEN)
    server.start()
    yield server
    server.stop()


# The quick loop is `python -m pytest -m "not slow"`; `.ci/run` runs everything. A test is slow when it starts
# processes (the CLI as a user runs it, `accelerate launch`, kill and Ctrl-C, runs side by side) or builds the site:
# the rule reads the test's own source, so a new test of that kind is marked without anyone remembering to.
SLOW_SOURCE = re.compile(r"subprocess\.(run|Popen)|\b_train\(|\b_run\(|_run_cli\(\[\"launch\"|train_with_baseline\(|"
                         r"train_concurrently\(|mkdocs|killpg|\bcli\(")


@pytest.fixture(autouse=True, scope="session")
def temporary_files_in_the_session_folder(tmp_path_factory):
    """The library's temporary files of this process (a list of unreadable images, an export folder) go to the
    session folder too; pytest's own tmp_path tree is placed first, where pytest keeps it."""
    tmp_path_factory.getbasetemp()
    tempfile.tempdir = os.environ["TMPDIR"]
    yield
    tempfile.tempdir = None


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_TMP, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if SLOW_SOURCE.search(source) or item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
