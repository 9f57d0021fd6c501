"""Errors a user can cause. The CLI prints their message as one line, no traceback."""


class VidstudyError(Exception):
    """Base class for problems with user input: files, parameters, run folders."""


class FeatureFileError(VidstudyError, ValueError):
    """A feature file (or a set of split files) is missing, malformed or inconsistent."""


class ParameterError(VidstudyError, ValueError):
    """A parameter has a value the function cannot use."""
