"""Typed errors. Every message says what went wrong *and* how to fix it."""

import sys


class HybridWrapError(Exception):
    """Base class of every error hybridwrap raises on purpose."""


class UnknownBackboneError(HybridWrapError, KeyError):
    def __str__(self):  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class UnsupportedBackboneError(HybridWrapError, ValueError):
    """The backbone cannot be split/mirrored (e.g. token features of a ViT)."""


class InputSizeError(HybridWrapError, ValueError):
    """The input size cannot be mirrored back exactly by the decoder."""


class ConfigError(HybridWrapError, ValueError):
    """A bad argument or configuration value."""


class CheckpointError(HybridWrapError, ValueError):
    """A checkpoint that is missing, unsafe, corrupted or for another model."""


class DataError(HybridWrapError, ValueError):
    """A dataset that does not fit the request (size, labels, path...)."""


class TrainingError(HybridWrapError, RuntimeError):
    """Training had to stop (e.g. a non-finite loss)."""


def run_user_command(fn) -> int:
    """Run ``fn``; a hybridwrap error becomes one clear line on stderr and exit status 2, not a traceback."""
    try:
        return fn() or 0
    except HybridWrapError as exc:
        print(f"hybridwrap: error: {exc}", file=sys.stderr)
        return 2
