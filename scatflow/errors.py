"""The errors a user sees as one line (``scatflow: error: ...``, exit status 2).

Each names the file, channel, config key or store at fault; the command line
prints the message without a traceback (``--debug`` shows it).
"""


class ConfigError(ValueError):
    """A configuration problem; the message names the file and key at fault."""


class InputError(ValueError):
    """Unusable input; the message names the file or channel at fault."""


class StoreError(ValueError):
    """A store that cannot be used as asked; the message says why."""


#: Errors whose message is complete on its own: shown without the exception's type.
USER_ERRORS = (ConfigError, InputError, StoreError, FileNotFoundError, PermissionError)
