"""The version of descend, in one place below every module that reports it (the package
face, the run records, ``descend --version``)."""

__version__ = "0.1.0"
