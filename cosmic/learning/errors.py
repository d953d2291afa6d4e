"""Errors of training, tuning and distribution that a stage reports in one line."""

from cosmic.utils import StageError


class TrainingError(StageError, RuntimeError):
    """Training diverged or cannot start."""


class DistributedError(TrainingError):
    """A distributed search or training cannot start or did not finish."""
