"""The Daphne-only autobahn tuning: applied to the checked version only, to calls that only
feed DEBUG lines, and what those lines would say is unchanged."""

import ast
import inspect
import pprint
import sys

from chillout_project import autobahn_tuning, tunings
from chillout_project.autobahn_tuning import DEFERRED, LazyText, autobahn_tuning_install, lazy


def test_every_deferred_call_in_autobahn_feeds_a_log_call_but_timings_str():
    import autobahn.websocket.protocol as protocol

    tree = ast.parse(inspect.getsource(protocol))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    elsewhere, logged = [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DEFERRED:
            keyword = parents[node]
            call = parents.get(keyword)
            if (isinstance(keyword, ast.keyword) and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Attribute) and call.func.value.attr == "log"):  # fmt: skip
                logged += 1
            else:
                elsewhere.append(node.lineno)
    assert logged >= 3
    timings_str_line = inspect.getsourcelines(protocol.Timings.__str__)[1] + 1
    assert elsewhere == [timings_str_line] or protocol.Timings.__str__ is autobahn_tuning.timings_str


def test_lazy_text_formats_like_the_call_only_when_asked():
    attrs = [("openHandshakeTimeout", 5, "WebSocketServerFactory")] * 20
    calls = []

    def spy(value):
        calls.append(value)
        return pprint.pformat(value)

    text = lazy(spy)(attrs)
    assert calls == [] and isinstance(text, LazyText)
    assert "\n{attrs}".format(attrs=text) == "\n" + pprint.pformat(attrs)
    assert str(text) == repr(text) == pprint.pformat(attrs)


def test_install_patches_only_the_imported_checked_module(monkeypatch, library_moved):
    import autobahn.websocket.protocol as protocol

    for name in DEFERRED:
        monkeypatch.setattr(protocol, name, getattr(protocol, name))
    monkeypatch.setattr(protocol.Timings, "__str__", protocol.Timings.__str__)
    originals = {name: getattr(protocol, name) for name in DEFERRED}
    monkeypatch.delitem(sys.modules, autobahn_tuning.MODULE)
    assert autobahn_tuning_install() is False  # not imported: untouched
    monkeypatch.setitem(sys.modules, autobahn_tuning.MODULE, protocol)
    checked = tunings.REACHES["autobahn_debug_lines"]
    library_moved("autobahn_debug_lines")
    assert autobahn_tuning_install() is False and {n: getattr(protocol, n) for n in DEFERRED} == originals
    monkeypatch.setitem(tunings.REACHES, "autobahn_debug_lines", checked)
    tunings.reaches_reset()
    assert autobahn_tuning_install() is True
    assert autobahn_tuning_install() is True  # twice: not wrapped twice
    for name in DEFERRED:
        assert getattr(protocol, name).chillout_lazy_of is originals[name]
    assert isinstance(protocol.hltype(protocol.WebSocketProtocol.sendData), LazyText)
    assert str(protocol.hlval(42)) == str(originals["hlval"](42))
    timings = protocol.Timings()
    timings.track("x")
    assert str(timings) == pprint.pformat(timings._timings)
