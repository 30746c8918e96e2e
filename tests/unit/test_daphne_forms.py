"""Daphne's requests are built with Twisted's form parsing off: only on the Daphne version
checked (the `daphne_form_parse` tuning), only through Twisted's own switch, and the
request still carries its raw body."""

import ast
import inspect
import sys
from io import BytesIO

from twisted.internet.testing import StringTransport
from twisted.web import http

from chillout_project import daphne_forms
from chillout_project import tunings
from chillout_project.daphne_forms import SWITCH, daphne_forms_install, formless


def test_daphne_builds_its_requests_from_the_module_global_and_never_reads_args():
    import daphne.http_protocol as protocol
    import daphne.server as server

    source = inspect.getsource(protocol.HTTPFactory.buildProtocol)
    assert "protocol.requestFactory = WebRequest" in source
    for module in (protocol, server):
        names = {n.attr for n in ast.walk(ast.parse(inspect.getsource(module))) if isinstance(n, ast.Attribute)}
        assert "args" not in names, f"{module.__name__} reads request.args now"
    assert daphne_forms.twisted_takes_the_switch()


class Recorder(http.Request):
    def process(self):
        self.processed = True


def received(request_class: type, body: bytes, content_type: bytes) -> http.Request:
    channel = http.HTTPChannel()
    channel.makeConnection(StringTransport())
    request = request_class(channel)
    request.requestHeaders.setRawHeaders(b"content-type", [content_type])
    request.content = BytesIO(body)
    request.content.seek(0, 2)
    request.requestReceived(b"POST", b"/api/upload/voice?x=1", b"HTTP/1.1")
    return request


def test_a_formless_request_keeps_the_raw_body_and_parses_no_form():
    body = b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nvalue\r\n--b--\r\n"
    content_type = b"multipart/form-data; boundary=b"
    parsed = received(Recorder, body, content_type)
    assert parsed.args == {b"x": [b"1"], b"f": [b"value"]}  # what Twisted does by default
    plain = received(formless(Recorder), body, content_type)
    assert plain.args == {b"x": [b"1"]} and plain.processed is True
    assert plain.content.read() == body
    assert getattr(plain, "_" + SWITCH) is False


def test_install_acts_only_under_daphne_and_only_once(monkeypatch, library_moved):
    import daphne.http_protocol as protocol

    original = protocol.WebRequest
    monkeypatch.setattr(protocol, "WebRequest", original)
    monkeypatch.delitem(sys.modules, daphne_forms.MODULE)
    assert daphne_forms_install() is False  # not imported: untouched
    monkeypatch.setitem(sys.modules, daphne_forms.MODULE, protocol)
    checked = tunings.REACHES["daphne_form_parse"]
    library_moved("daphne_form_parse")
    assert daphne_forms_install() is False and protocol.WebRequest is original
    monkeypatch.setitem(tunings.REACHES, "daphne_form_parse", checked)
    tunings.reaches_reset()
    assert daphne_forms_install() is True
    installed = protocol.WebRequest
    assert installed.__mro__[1] is original and installed.chillout_formless is True
    assert daphne_forms_install() is True and protocol.WebRequest is installed  # twice: not wrapped twice
