"""Errors appshot raises with a message meant for the user (no traceback needed)."""


class AppshotInputError(ValueError):
    """Input that appshot cannot use; the message names the file, field or value and what was expected."""


class AppshotStorageError(OSError):
    """A write that failed because storage ran out (full file system, file-size limit); the message names
    the file, says that nothing partial was left and what to do; ``problem`` says what ran out."""

    problem: str = "storage ran out"
