"""The package's error table against common/aq_error.h, and how errors become exceptions."""
import os
import re

import aquifer
from aquifer import _errors

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "common", "aq_error.h")


def test_codes_match_the_header():
    with open(HEADER) as f:
        text = f.read()
    header = {}
    for name, value in re.findall(r"\b(AQ_E[A-Z]+)\s*=\s*(?:\n\s*)?(-?\d+|AQ_ERR_BASE)", text):
        header[name] = -10000 if value == "AQ_ERR_BASE" else int(value)
    header.pop("AQ_ERR_BASE", None)
    assert header, "no codes found in the header"
    assert _errors.CODES == header


def test_exception_carries_code_name_and_sentence():
    e = _errors.error_for(_errors.AQ_ENOTFOUND, "no key k on n2 (127.0.0.1:7001)")
    assert isinstance(e, aquifer.NotFoundError) and isinstance(e, aquifer.Error)
    assert isinstance(e, LookupError)
    assert (e.code, e.name) == (-10004, "AQ_ENOTFOUND")
    assert "n2 (127.0.0.1:7001)" in str(e) and "AQ_ENOTFOUND" in str(e)
    assert isinstance(_errors.error_for(_errors.AQ_ETIMEDOUT), TimeoutError)
    assert isinstance(_errors.error_for(_errors.AQ_EUNAVAIL), ConnectionError)
    errno_err = _errors.error_for(-111)
    assert type(errno_err) is aquifer.Error and errno_err.name == "ECONNREFUSED"
    assert errno_err.message  # the errno's own phrase when the library gave none
