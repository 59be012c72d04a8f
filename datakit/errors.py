"""The one error family of hdrtv-datakit.

Every failure a user can cause (bad input file, bad recipe, wrong checkpoint...) raises a
subclass of :class:`DatakitError` whose message is one self-contained line. The CLI catches
the family once, prints the line to stderr and exits with status 2.
"""

from __future__ import annotations


class DatakitError(Exception):
    """Base class: a user-facing failure with a one-line message."""

    exit_code = 2


class InputError(DatakitError):
    """An input file is missing, unreadable, truncated or not what it claims to be."""


class UnsupportedFormatError(InputError):
    """The input is readable but its format (pixel format, transfer, codec...) is not supported."""


class NotHDR10Error(UnsupportedFormatError):
    """HDR10 (PQ, BT.2020, >= 10-bit) was required but the input is something else (SDR, HLG...)."""


class TruncatedError(InputError):
    """The container promises more video than the file holds (a cut-off download or copy)."""

    reason = "truncated"  # the failure reason a build records for the pair


class RecipeError(DatakitError):
    """A recipe or config file is unreadable or invalid (unknown key, wrong type, impossible value)."""


class AlignmentError(DatakitError):
    """Two videos of a pair could not be aligned with enough confidence."""


class StoreError(DatakitError):
    """A shard, manifest or output folder is damaged or inconsistent."""


class ModelError(DatakitError):
    """Unknown model name, or a checkpoint that does not fit the model."""


class OutputExistsError(DatakitError):
    """The output path exists and overwriting it was not requested."""


class OutputWriteError(StoreError):
    """An output could not be written: a full disk, a read-only folder, no permission (the message names the
    path and the cause)."""
