"""After-sales field-service dispatch: the domain model, service rules, planning and the CLI.

Submodules are imported explicitly (``from dispatch import db``); importing the package itself
loads nothing and reads no configuration.
"""

__version__ = "0.1.0"
