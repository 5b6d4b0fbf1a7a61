"""The error of the commands' input (exit code 2), said in one line."""
from __future__ import annotations


class CliError(Exception):
    """A problem with what the command was given or could reach; `cds_service.ehr.errors.EhrInputError` is answered the same way."""
