"""tfxfer's version, in a module of its own.

Kept apart from `tfxfer/__init__.py` so that code needing only the version (the
export metadata, setuptools' `attr:` in setup.cfg) imports nothing else.
"""

__version__ = "0.1.0"
