"""Under Daphne: request bodies are not parsed into form arguments nobody reads.

Twisted's `Request.requestReceived` (Twisted 26.10) parses a whole `multipart/form-data`
or urlencoded POST body into `request.args` before Daphne sees the request — with the
`email` package, ~60 % of the server CPU of a media upload (py-spy, docs/performance.md,
"Daphne's ceiling per upload byte"). Daphne never reads `request.args`: it hands the raw
body to the ASGI application, where Django parses it once. Twisted has a public switch for
this, the `parsePOSTFormSubmission=False` argument of `Request.__init__`; Daphne builds its
requests with `daphne.http_protocol.WebRequest` (a module global its `HTTPFactory` names
when it builds a connection) and does not pass it.

`daphne_forms_install()` replaces that global with a subclass passing the switch: a private
detail of Daphne: the tuning `daphne_form_parse` of `chillout_project.tunings`, applied
only on the Daphne and Twisted versions it was checked against and on a Twisted whose
`Request` takes the argument, else left alone (with a warning);
tests/unit/test_daphne_forms.py fails when that shape changes. Nothing happens
at import: the composition root calls it, and it acts only when Daphne's HTTP protocol is
already imported (the process is Daphne's).
"""

from __future__ import annotations

import inspect
import logging
import sys

from chillout_project.tunings import reach_active

logger = logging.getLogger(__name__)

MODULE = "daphne.http_protocol"
SWITCH = "parsePOSTFormSubmission"


def formless(request_class: type) -> type:
    """`request_class` building its requests with Twisted's form parsing off."""

    class FormlessWebRequest(request_class):
        chillout_formless = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault(SWITCH, False)
            super().__init__(*args, **kwargs)

    FormlessWebRequest.__qualname__ = FormlessWebRequest.__name__ = f"Formless{request_class.__name__}"
    return FormlessWebRequest


def twisted_takes_the_switch() -> bool:
    from twisted.web import http

    return SWITCH in inspect.signature(http.Request.__init__).parameters


def daphne_forms_install() -> bool:
    """Make Daphne build requests whose bodies Twisted does not parse; False when not
    applied (not under Daphne, the tuning off, or a Twisted without the switch)."""
    module = sys.modules.get(MODULE)
    if module is None or not reach_active("daphne_form_parse"):
        return False
    if not twisted_takes_the_switch():
        logger.warning("Twisted's Request takes no %s: request bodies still parsed by Twisted", SWITCH)
        return False
    if not getattr(module.WebRequest, "chillout_formless", False):
        module.WebRequest = formless(module.WebRequest)
    return True
