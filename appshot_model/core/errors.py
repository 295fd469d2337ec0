"""Errors raised for bad user input."""


class AppshotInputError(ValueError):
    """Input that appshot cannot use; the message names the file, field or value and what was expected."""
