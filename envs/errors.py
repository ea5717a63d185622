"""One exception type for bad user input, so every script can report it as a single line."""

import errno


class UserInputError(ValueError):
    """Raised for input a user can fix (unknown task, wrong shape, corrupt file, NaN data...).

    Scripts catch it in :func:`worldmodel.runtime.cli_main` and print ``error: <message>`` without
    a traceback; library callers still get an ordinary ``ValueError`` subclass.
    """


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC/EDQUOT, also when a library (safetensors, h5py) only says so in its message."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(err) or "Disk quota exceeded" in str(err)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none), for one-line errors."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
