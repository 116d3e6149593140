"""The project's error codes as Python exceptions.

Every failing call of libaquifer returns 0 or a negative code: aquifer's own AQ_E* codes (the
table below mirrors common/aq_error.h; tests/test_errors.py holds it to the header) or a negated
errno. The library also keeps a sentence naming the node that failed; an exception carries both,
so a caller always learns the code and who said it.
"""
import builtins
import errno
import os

# Every AQ_E* code, as in common/aq_error.h.
AQ_EINVAL = -10000
AQ_ENOMEM = -10001
AQ_EKEY = -10002
AQ_ETOOBIG = -10003
AQ_ENOTFOUND = -10004
AQ_EFULL = -10005
AQ_EIO = -10006
AQ_ECORRUPT = -10007
AQ_ELOCKED = -10008
AQ_ETIMEDOUT = -10009
AQ_EBUSY = -10010
AQ_ERESTARTED = -10011
AQ_ECLOSED = -10012
AQ_EPROTO = -10013
AQ_EQUEUEFULL = -10014
AQ_ECANCELED = -10015
AQ_EAUTH = -10016
AQ_ENOMETHOD = -10017
AQ_ECONFIG = -10018
AQ_EEXIST = -10019
AQ_EUNAVAIL = -10020
AQ_EPARSE = -10021
AQ_ELIMIT = -10022
AQ_ESTALE = -10023
AQ_EDEADLINE = -10024
CODES = {name: code for name, code in globals().items() if name.startswith("AQ_E")}
NAMES = {v: k for k, v in CODES.items()}


def code_name(code):
    """The symbolic name of a code: "AQ_ENOTFOUND", "ECONNREFUSED", or "E<code>" if unknown."""
    if code in NAMES:
        return NAMES[code]
    if -4095 <= code < 0 and -code in errno.errorcode:
        return errno.errorcode[-code]
    return f"E{code}"


class Error(Exception):
    """A failed aquifer call: .code (negative AQ_E* or -errno), .name ("AQ_ENOTFOUND") and
    .message (the library's sentence, naming the node where one was involved)."""

    def __init__(self, code, message=""):
        self.code = int(code)
        self.name = code_name(self.code)
        self.message = message or (os.strerror(-self.code) if -4095 <= self.code < 0
                                   else self.name)
        super().__init__(self.code, self.message)

    def __str__(self):
        return f"{self.message} [{self.name}]"


class NotFoundError(Error, LookupError):
    """No such key or frame (AQ_ENOTFOUND)."""


class ExistsError(Error):
    """Already exists, e.g. a frame of that name (AQ_EEXIST)."""


class TimeoutError(Error, builtins.TimeoutError):
    """No answer before the deadline (AQ_ETIMEDOUT, AQ_EDEADLINE)."""


class UnavailableError(Error, ConnectionError):
    """No live node could serve the request, or a node went away (AQ_EUNAVAIL, AQ_ECLOSED,
    AQ_ERESTARTED)."""


class ConfigError(Error):
    """The cluster configuration is missing or wrong (AQ_ECONFIG)."""


class AuthError(Error, PermissionError):
    """Authentication with a node failed (AQ_EAUTH)."""


class ParseError(Error, ValueError):
    """The input could not be parsed (AQ_EPARSE)."""


class InvalidError(Error, ValueError):
    """A bad argument: key, size or option (AQ_EINVAL, AQ_EKEY, AQ_ETOOBIG)."""


class BatchError(Error):
    """Some operations of a put_many or get_many failed. .errors maps each failed key to its
    exception; .results holds what the others gave (Written for puts, bytes for gets). The
    code and sentence are the first failure's."""

    def __init__(self, errors, results):
        first = next(iter(errors.values()))
        super().__init__(first.code, f"{len(errors)} of {len(errors) + len(results)} failed; "
                         f"first: {first.message}")
        self.errors, self.results = errors, results


_CLASSES = {
    AQ_ENOTFOUND: NotFoundError,
    AQ_EEXIST: ExistsError,
    AQ_ETIMEDOUT: TimeoutError,
    AQ_EDEADLINE: TimeoutError,
    AQ_EUNAVAIL: UnavailableError,
    AQ_ECLOSED: UnavailableError,
    AQ_ERESTARTED: UnavailableError,
    AQ_ECONFIG: ConfigError,
    AQ_EAUTH: AuthError,
    AQ_EPARSE: ParseError,
    AQ_EINVAL: InvalidError,
    AQ_EKEY: InvalidError,
    AQ_ETOOBIG: InvalidError,
}


def error_for(code, message=""):
    """The exception object for a code: the most specific class above, else Error."""
    return _CLASSES.get(code, Error)(code, message)
