"""Errors raised by the data layer."""


class DataError(Exception):
    """A corpus is missing, unreachable or malformed.

    One exception type for every data problem so the CLI can print the message
    (which always says which file is at fault and how to fix it) instead of a
    traceback from deep inside tfds.
    """
