"""Typed errors: every message says what went wrong *and* how to fix it.

Each kind of error has its own exit status (`command.run_user_command` turns an error into its line and its
status), so that scripts can tell a bad config from missing data, a bad checkpoint or an unreachable Hub:

    1 other hybridwrap error    2 config (also argparse's usage errors)    3 data    4 checkpoint
    5 Hub / network             6 training stopped (non-finite loss)       130 interrupted (Ctrl-C)
"""

from __future__ import annotations


class HybridWrapError(Exception):
    """Base class of every error hybridwrap raises on purpose."""

    exit_code = 1

    def __init__(self, *args):
        # Raised in a DataLoader worker, an error is re-raised in the training process as type(msg) with msg =
        # "Caught X in DataLoader worker ...\nOriginal Traceback ...: message": keep the message, which names the fix
        if len(args) == 1 and isinstance(args[0], str) and args[0].startswith("Caught ") and \
                "\nOriginal Traceback" in args[0]:
            args = (args[0].rsplit(f"{type(self).__module__}.{type(self).__qualname__}: ", 1)[-1].strip(),)
        super().__init__(*args)


class ConfigError(HybridWrapError, ValueError):
    """A bad argument or configuration value."""

    exit_code = 2


class UnknownBackboneError(ConfigError, KeyError):
    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnsupportedBackboneError(ConfigError):
    """The backbone cannot be split/mirrored (e.g. token features of a ViT)."""


class InputSizeError(ConfigError):
    """The input size cannot be mirrored back exactly by the decoder."""


class DataError(HybridWrapError, ValueError):
    """A dataset that does not fit the request (size, labels, path...)."""

    exit_code = 3


class CheckpointError(HybridWrapError, ValueError):
    """A checkpoint that is missing, unsafe, corrupted or for another model."""

    exit_code = 4


class HubError(HybridWrapError, RuntimeError):
    """The Hugging Face Hub refused a request, or could not be reached."""

    exit_code = 5


class TrainingError(HybridWrapError, RuntimeError):
    """Training had to stop (e.g. a non-finite loss)."""

    exit_code = 6


class Interrupted(HybridWrapError):
    """Ctrl-C; the message says where the last checkpoint is and how to resume."""

    exit_code = 130
