"""The one error type of the use commands: its message is the single line the user sees."""


class InferenceError(ValueError):
    """Bad input (model path, file, flag value) the user can fix; the CLI prints it and exits 1."""
