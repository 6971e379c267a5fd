"""The public ``Codec`` object and ``get_codec`` over the generated grammar tables."""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any, Dict, Tuple, Union

from exi._impl import _eng
from exi.errors import UnknownNamespaceError

__all__ = ["NAMESPACES", "SHORT_NAMES", "Codec", "get_codec"]

#: namespace -> generated table module (exi._generated.<name>)
NAMESPACES: Dict[str, str] = {
    "urn:iso:15118:2:2010:AppProtocol": "apphand",
    "urn:din:70121:2012:MsgDef": "din",
    "urn:iso:15118:2:2013:MsgDef": "iso2",
    "urn:iso:std:iso:15118:-20:CommonMessages": "iso20_cm",
    "urn:iso:std:iso:15118:-20:AC": "iso20_ac",
    "urn:iso:std:iso:15118:-20:DC": "iso20_dc",
    "urn:iso:std:iso:15118:-20:WPT": "iso20_wpt",
    "urn:iso:std:iso:15118:-20:ACDP": "iso20_acdp",
    "http://www.w3.org/2000/09/xmldsig#": "xmldsig",
}

#: short names (the command line's ``--namespace``) -> namespace; ``get_codec`` takes them too
SHORT_NAMES: Dict[str, str] = {
    "apphand": "urn:iso:15118:2:2010:AppProtocol",
    "sap": "urn:iso:15118:2:2010:AppProtocol",
    "din": "urn:din:70121:2012:MsgDef",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
    "iso20": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20-common": "urn:iso:std:iso:15118:-20:CommonMessages",
    "iso20-ac": "urn:iso:std:iso:15118:-20:AC",
    "iso20-dc": "urn:iso:std:iso:15118:-20:DC",
    "iso20-wpt": "urn:iso:std:iso:15118:-20:WPT",
    "iso20-acdp": "urn:iso:std:iso:15118:-20:ACDP",
    "xmldsig": "http://www.w3.org/2000/09/xmldsig#",
}

#: grammar variants (``get_codec(..., grammars=...)``) -> table module suffix; a set without a
#: ``<name><suffix>`` module (the generator writes none where the variant equals the default)
#: uses its default tables
GRAMMARS: Dict[str, str] = {"exi": "", "iso15118-jar": "_jar"}

_CACHE: Dict[Tuple[str, str], "Codec"] = {}


class Codec(_eng.CodecCore):
    """Encoder/decoder for one schema set.

    Messages are dicts shaped like the XML: the root element's local name is the single top key,
    child elements and attributes are keys by local name, the simple content of an element that also
    has attributes is under ``"value"``, elements that may repeat (maxOccurs > 1) are lists, absent
    optional elements are omitted. hexBinary/base64Binary are ``bytes``, enumerations their literal
    strings, booleans ``bool``, integers ``int``. A nil element (xsi:nil="true") is
    ``{"xsi:nil": True}`` plus its attributes; ``"xsi:type": "{uri}TypeName"`` makes the element
    follow that type's grammar (a simple-typed element is then a dict with ``"value"``); undeclared
    attributes are ``"@name"`` / ``"@{uri}name"`` keys with str values; undeclared and wildcard
    elements are ``"{uri}local"`` keys holding lists, where the dict has them among the children.

    ``encode(message) -> bytes`` / ``decode(data) -> dict`` work on EXI documents (header byte 0x80
    included), ``encode_fragment`` / ``decode_fragment`` on fragments of the schema set's fragment
    grammar (used for signature digests). The four are inherited from the engine's ``CodecCore``,
    so a call goes straight into the compiled engine.
    """

    __slots__ = ("namespace", "name", "grammars", "_tables", "_shape_cache")

    def __init__(self, namespace: str, name: str, engine: Any = None, grammars: str = "exi") -> None:
        # ``engine`` (exi._engine or exi._cengine) is for tests that compare both implementations;
        # normal use goes through get_codec and the engine chosen at import.
        eng = _eng if engine is None else engine
        if grammars not in GRAMMARS:
            raise ValueError(f"unknown grammars {grammars!r}; known: {sorted(GRAMMARS)}")
        self.namespace = namespace
        self.name = name
        self.grammars = grammars
        module = f"exi._generated.{name}{GRAMMARS[grammars]}"
        if importlib.util.find_spec(module) is None:
            module = f"exi._generated.{name}"
            if importlib.util.find_spec(module) is None:  # a checkout whose tables were never generated
                raise ImportError(
                    f"exi: the grammar tables of {name!r} ({namespace}) are not generated: they are made "
                    "from the ISO 15118 / DIN SPEC 70121 XSDs when the package is built (EXI_XSD_DIR) or "
                    "by 'python -m exi.codegen --xsd-dir DIR' in a checkout (see the README)")
        tables = importlib.import_module(module)
        self._tables = tables
        st, xt, ge = tables.STRING_TABLE, tables.XSI_TYPES, tables.GLOBAL_ELEMENTS
        self._doc = eng.Grammar(tables.STATES, tables.DOC_STATE, tables.DOC_KEYS, False, st, xt, ge)
        self._frag = eng.Grammar(tables.STATES, tables.FRAG_STATE, tables.FRAG_KEYS, True, st, xt, ge)
        self._shape_cache: Dict[int, Any] = {}

    if TYPE_CHECKING:  # the four methods are CodecCore's (compiled); their public types:
        def encode(self, message: Dict[str, Any]) -> bytes: ...
        def decode(self, data: Union[bytes, bytearray, memoryview]) -> Dict[str, Any]: ...
        def encode_fragment(self, message: Dict[str, Any]) -> bytes: ...
        def decode_fragment(self, data: Union[bytes, bytearray, memoryview]) -> Dict[str, Any]: ...

    def __repr__(self) -> str:
        g = "" if self.grammars == "exi" else f", grammars={self.grammars!r}"
        return f"<exi.Codec {self.namespace}{g} ({type(self._doc).__module__})>"


def get_codec(namespace: str, *, grammars: str = "exi") -> Codec:
    """Return the (cached) codec for a root namespace URI or its short name (``"iso2"``, ``"din"``,
    ``"iso20-dc"``, ... see :data:`SHORT_NAMES`); raises UnknownNamespaceError (an EXIError and ValueError).

    ``grammars="exi"`` (the default) runs the EXI 1.0 grammars of the schema set, as EXIficient
    compiles them from the XSDs and libcbv2g's decoders read them. ``grammars="iso15118-jar"``
    runs the grammars precompiled into ``EXICodec.jar`` of the ``iso15118`` package (Josev), which
    differ in one respect: after the last item a bounded list allows (maxOccurs above 8 in ISO-2,
    above 128 in ISO-20) they still spend a 2-production event code on EE. Streams differ only
    for such a list at exactly its maxOccurs; use this variant to talk to that stack byte for byte.
    """
    key = (namespace, grammars)
    codec = _CACHE.get(key)
    if codec is None:
        uri = SHORT_NAMES.get(namespace.strip().lower(), namespace) if isinstance(namespace, str) else namespace
        name = NAMESPACES.get(uri)
        if name is None:
            raise UnknownNamespaceError(f"no EXI schema set for namespace {namespace!r}; known: "
                                        f"{', '.join(sorted(NAMESPACES))}, or a short name: {', '.join(SHORT_NAMES)}")
        codec = _CACHE.get((uri, grammars)) or Codec(uri, name, grammars=grammars)
        _CACHE[uri, grammars] = codec
        if namespace in SHORT_NAMES:  # the exact short name too (not every spelling a caller tries)
            _CACHE[key] = codec
    return codec
