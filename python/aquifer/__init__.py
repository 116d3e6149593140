"""aquifer: the Python client of an aquifer cluster, over the C library libaquifer.

    import aquifer
    with aquifer.connect() as c:          # $AQUIFER_CONF, ./cluster.conf or the default
        c.put("k", b"value")
        c.get("k")                        # b"value"
        df = c.parse("flights.csv").to_pandas()

Every failure raises aquifer.Error (or a subclass such as NotFoundError) carrying .code (the
project's AQ_E* code or a negated errno), .name and .message (the library's sentence, naming the
node). The README's "Python" section has the frame type mapping and where the library is found.
"""
from ._client import Client, Frame, Written
from ._columns import Column
from ._errors import (AuthError, BatchError, ConfigError, Error, ExistsError, InvalidError,
                      NotFoundError, ParseError, TimeoutError, UnavailableError)

__all__ = ["connect", "Client", "Frame", "Column", "Written", "Error", "NotFoundError",
           "ExistsError", "TimeoutError", "UnavailableError", "ConfigError", "AuthError",
           "ParseError", "InvalidError", "BatchError", "library_path"]
__version__ = "0.1.0"


def connect(config=None):
    """A Client of the cluster the config file describes (None: the command's lookup,
    $AQUIFER_CONF, else ./cluster.conf, else three nodes on 127.0.0.1)."""
    return Client(config)


def library_path():
    """The path of the libaquifer this package loaded (loading it if needed)."""
    from . import _lib

    return _lib.lib().path
