"""The one error the EHR helpers raise for bad input; the simulator answers it with 400, the CLI with exit code 2."""
from __future__ import annotations


class EhrInputError(ValueError):
    """What the caller passed cannot be used (no Patient resource, an unknown hook, an unusable key), said in one line."""
