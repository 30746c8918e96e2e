"""The Daphne-only autobahn tuning: applied to the checked version only, and what it formats
is what autobahn would have logged."""

import inspect
import pprint
import sys
from importlib import metadata

from chillout_project import autobahn_tuning
from chillout_project.autobahn_tuning import AUTOBAHN_VERSION_TESTED, LazyPformat, autobahn_tuning_install


def test_the_installed_autobahn_is_the_version_checked():
    """When this fails, re-read `WebSocketProtocol._connectionMade` of the new autobahn (does
    it still call the module's `pformat` for a DEBUG line only?), then update the version."""
    assert metadata.version("autobahn") == AUTOBAHN_VERSION_TESTED


def test_lazy_pformat_formats_like_pformat_only_when_asked():
    attrs = [("openHandshakeTimeout", 5, "WebSocketServerFactory")] * 20
    lazy = LazyPformat(attrs)
    assert "\n{attrs}".format(attrs=lazy) == "\n" + pprint.pformat(attrs)
    assert str(lazy) == repr(lazy) == pprint.pformat(attrs)


def test_install_patches_only_the_imported_checked_module(monkeypatch):
    import autobahn.websocket.protocol as protocol

    monkeypatch.setattr(protocol, "pformat", pprint.pformat)
    monkeypatch.delitem(sys.modules, autobahn_tuning.MODULE)
    assert autobahn_tuning_install() is False  # not imported: untouched
    monkeypatch.setitem(sys.modules, autobahn_tuning.MODULE, protocol)
    monkeypatch.setattr(autobahn_tuning, "AUTOBAHN_VERSION_TESTED", "0.0.0")
    assert autobahn_tuning_install() is False and protocol.pformat is pprint.pformat
    monkeypatch.setattr(autobahn_tuning, "AUTOBAHN_VERSION_TESTED", metadata.version("autobahn"))
    assert autobahn_tuning_install() is True and protocol.pformat is LazyPformat
    assert autobahn_tuning_install() is True  # twice is harmless


def test_autobahn_still_formats_its_options_for_a_debug_line_only():
    import autobahn.websocket.protocol as protocol

    source = inspect.getsource(protocol.WebSocketProtocol._connectionMade)
    assert 'self.log.debug("\\n{attrs}", attrs=pformat(configAttrLog))' in source
    assert source.count("pformat(") == 1
