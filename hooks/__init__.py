"""CDS services declared as data: one TOML file per service in this folder.

`load_services(directory, load_model=..., builders=...)` parses and checks them at start-up.
"""
from pathlib import Path

from .definitions import ServiceDefinition
from .loader import ServiceFileError, load_services

SERVICES_DIR = Path(__file__).parent

__all__ = ["SERVICES_DIR", "ServiceDefinition", "ServiceFileError", "load_services"]
