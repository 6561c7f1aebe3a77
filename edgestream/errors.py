"""User-facing errors: the CLI prints their message (which names the file, tensor, node or field and
what was expected) and exits non-zero without a traceback."""


class EdgestreamError(Exception):
    """Base class of every error caused by input, configuration or a device, not by a bug."""


class InputError(EdgestreamError):
    """A model file, checkpoint or artifact is missing, truncated, corrupt or unsupported."""


class CompileError(EdgestreamError):
    """The model cannot be lowered as requested."""


class DeviceError(EdgestreamError):
    """A device fault: timeout, error status, configuration mismatch."""
