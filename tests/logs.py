"""Logging for the test run."""

import logging
import sys


class CurrentStderrHandler(logging.StreamHandler):
    """Write each record to whatever ``sys.stderr`` is when it comes.

    pytest swaps ``sys.stderr`` for its capture of each test and closes those captures at
    the end; a handler bound to one at configuration time answers a record logged after
    that (an object collected at exit) with "I/O operation on closed file" tracebacks.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass
