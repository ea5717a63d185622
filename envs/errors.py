"""One exception type for bad user input, so every script can report it as a single line."""


class UserInputError(ValueError):
    """Raised for input a user can fix (unknown task, wrong shape, corrupt file, NaN data...).

    Scripts catch it in :func:`worldmodel.runtime.cli_main` and print ``error: <message>`` without
    a traceback; library callers still get an ordinary ``ValueError`` subclass.
    """
