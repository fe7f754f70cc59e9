"""``hybridwrap launch``: ``accelerate launch`` for hybridwrap commands, with hybridwrap's error path.

    hybridwrap launch --multi_gpu --num_processes 2 train --config configs/cifar10_convlarge.yaml

Options before the command are ``accelerate launch``'s own (see ``accelerate launch --help``). The processes
run exactly what ``accelerate launch -m hybridwrap.cli COMMAND ...`` runs. The difference is the end: when
the processes stop on an error, rank 0 has printed the one ``hybridwrap: error:`` line, and plain
``accelerate launch`` adds torch's ``ChildFailedError`` traceback and exits 1 whatever the cause. This
launcher adds nothing and exits with the processes' own status (2 config, 3 data, 4 checkpoint, 5 Hub, ...).
"""

from __future__ import annotations

import logging
import os
import sys

from .command import peer_error_files, run_user_command
from .errors import ConfigError

COMMANDS = ("train", "tune", "eval", "config")


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(accelerate launch options, hybridwrap command and its options)."""
    for i, token in enumerate(argv):
        if token in COMMANDS:
            return argv[:i], argv[i:]
    raise ConfigError("hybridwrap launch needs a command after the accelerate options, e.g. `hybridwrap launch "
                      f"--multi_gpu --num_processes 2 train --output-dir runs/x` (commands: {', '.join(COMMANDS)}).")


def launch(argv: list[str]) -> int:
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    accelerate_args, command = split_argv(argv)
    # torch's agent logs each failed process and each signal as lines of its own; rank 0's message says it better
    import torch.distributed.elastic.agent.server.local_elastic_agent  # noqa: F401  (creates the agent's loggers)
    import torch.distributed.run  # noqa: F401

    for name in ["torch.distributed.elastic", *logging.root.manager.loggerDict]:
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = launch_command_parser().parse_args([*accelerate_args, "--module", "hybridwrap.cli", *command])
    try:
        launch_command(args)
    except ChildFailedError as exc:  # rank 0 has said why; its exit status says what kind of error it was
        _, first = exc.get_first_failure()
        return first.exitcode if first.exitcode > 0 else 1
    except (KeyboardInterrupt, SignalException):  # Ctrl-C: the processes say where their last checkpoint is
        return 130
    finally:  # every rank has ended: the exit status rank 0 left for the others has been read
        for path in peer_error_files(os.getpid()):
            path.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    return run_user_command(lambda: launch(argv))
