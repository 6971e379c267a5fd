"""A drop-in EXI codec for the ``iso15118`` PyPI package ("Josev"), without Java.

That package talks to its codec through ``iso15118.shared.iexi_codec.IEXICodec``:
``encode(message: str, namespace: str) -> bytes``, ``decode(stream: bytes, namespace: str) -> str``
and ``get_version() -> str``, with messages as JSON text in the shape of EXIficient's JSON binding
(the shape of the project's vectors: hexBinary as uppercase hex, base64Binary as base64). Plug
ours in with::

    from iso15118.shared.exi_codec import EXI
    from exi.josev import JosevCodec

    EXI().set_exi_codec(JosevCodec())

This module does not import ``iso15118``; ``JosevCodec`` satisfies the interface by duck typing
(and registers as a virtual subclass of ``IEXICodec`` when that package is importable).

Fragments: the package signs elements by calling ``encode`` with the element itself as the JSON
root (``{"AuthorizationReq": {...}}``, ``{"SignedInfo": {...}}``). As its EXIficient codec does,
we encode those with the schema set's fragment grammar: every root of the xmldsig namespace; any
root other than ``V2G_Message`` for DIN and ISO 15118-2; ``PnC_AReqAuthorizationMode``,
``OEMProvisioningCertificateChain`` and any root the document grammar lacks for ISO 15118-20.
"""
from __future__ import annotations

import json
import sys
from enum import Enum
from typing import TYPE_CHECKING, Any

import exi
from exi._impl import _eng  # the engine chosen at import (compiled, or EXI_IMPL=python)
from exi._jarshape import JAR_ZERO_DEFAULTS, from_jar, to_jar
from exi._shape import from_json, to_json

__all__ = ["JosevCodec", "is_fragment_root"]


def _ns(namespace: Any) -> str:
    """The namespace string; the package passes its ``Namespace`` str-Enum members, whose
    ``str()`` is ``'Namespace.SAP'`` rather than the URI."""
    if isinstance(namespace, Enum):
        namespace = namespace.value
    if not isinstance(namespace, str):
        raise exi.UnknownNamespaceError(f"namespace must be a string, got {type(namespace).__name__}")
    return str.__str__(namespace)

_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

_V2G_MESSAGE_SETS = ("urn:din:70121:2012:MsgDef", "urn:iso:15118:2:2013:MsgDef")
_ISO20_BASE = "urn:iso:std:iso:15118:-20:"
#: -20 elements the iso15118 package signs (EXIficient's ``signatureElements_20``).
_ISO20_SIGNED_ROOTS = frozenset({"PnC_AReqAuthorizationMode", "OEMProvisioningCertificateChain"})


def is_fragment_root(namespace: str, root: str, codec: Any) -> bool:
    """Whether a JSON message rooted at ``root`` is encoded as an EXI fragment in ``namespace``."""
    if namespace == _XMLDSIG:
        return True
    if namespace in _V2G_MESSAGE_SETS:
        return root != "V2G_Message"
    if namespace.startswith(_ISO20_BASE):
        return root in _ISO20_SIGNED_ROOTS or root not in codec._tables.DOC_KEYS
    return False


class JosevCodec(_eng.JarCore):  # type: ignore[misc,name-defined]
    """IEXICodec implementation over :func:`exi.get_codec` (JSON text in, EXI bytes out).

    As a drop-in for that package's ``EXICodec.jar`` it runs the jar's grammar variant by default
    (``grammars="iso15118-jar"``: a bounded list at exactly its maxOccurs ends as the jar ends
    it); ``JosevCodec(grammars="exi")`` gives the EXI 1.0 grammars instead.

    Its JSON is the jar's (exi/_jarshape.py). The common case runs in the compiled engine
    straight between JSON text and EXI bits (``jar_encode`` / ``jar_decode``); anything else
    (second-level events, text in mixed content, keys out of grammar order, JSON escapes,
    malformed input) takes the general path through dicts, which names the error.
    """

    __slots__ = ("grammars",)

    def __init__(self, grammars: str = "iso15118-jar") -> None:
        exi.get_codec(_XMLDSIG, grammars=grammars)  # rejects an unknown variant now, not per call
        super().__init__()
        self.grammars = grammars

    def _entry(self, namespace: Any) -> tuple:
        """(root key -> Grammar for the compiled encoder, the decoding Grammar, the codec)."""
        codec = exi.get_codec(_ns(namespace), grammars=self.grammars)
        t = codec._tables
        roots = {k: (codec._frag if is_fragment_root(codec.namespace, k, codec) else codec._doc)
                 for k in list(t.DOC_KEYS) + list(t.FRAG_KEYS)}
        dec = codec._frag if codec.namespace == _XMLDSIG else codec._doc
        defaults = JAR_ZERO_DEFAULTS.get(codec.namespace)
        if defaults:
            _eng.jar_defaults(dec, defaults)
        ent = (roots, dec, codec)
        if len(self._ents) < 64:
            self._ents[namespace] = ent
        return ent

    if TYPE_CHECKING:  # the two methods are JarCore's (compiled); their public types:
        def encode(self, message: Any, namespace: Any) -> bytes:  # message: str or bytes; namespace: str
            """Encode a JSON message (str or bytes) with the schema set of ``namespace``.

            Raises :class:`exi.EncodeError` (a ``ValueError``) for messages the schema rejects
            and for JSON that is not one object with one root element;
            ``exi.UnknownNamespaceError`` for a namespace without a codec."""

        def decode(self, stream: Any, namespace: Any) -> str:  # stream: bytes; namespace: str
            """Decode an EXI document (a fragment for the xmldsig namespace) to JSON text.

            Raises :class:`exi.DecodeError` (a ``ValueError``) for malformed streams."""

    def _encode_general(self, message: Any, namespace: Any) -> bytes:
        """encode() where the compiled path does not answer (and the first call per namespace)."""
        try:
            ent = self._ents.get(namespace)
        except TypeError:  # unhashable: _entry names the error
            ent = None
        if ent is None:
            ent = self._entry(namespace)
            out = _eng.jar_encode(ent[0], message)
            if out is not None:
                return out  # type: ignore[no-any-return]
        codec = ent[2]
        try:
            obj = json.loads(message)
        except (TypeError, ValueError) as exc:
            raise exi.EncodeError("", "type", f"message is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or len(obj) != 1:
            raise exi.EncodeError("", "type", "expected a JSON object with exactly one root element")
        root = next(iter(obj))
        fragment = is_fragment_root(codec.namespace, root, codec)
        native = from_json(codec, from_jar(codec, obj, fragment=fragment), fragment=fragment)
        return codec.encode_fragment(native) if fragment else codec.encode(native)

    def _decode_general(self, stream: Any, namespace: Any) -> str:
        """decode() where the compiled path does not answer (and the first call per namespace)."""
        try:
            ent = self._ents.get(namespace)
        except TypeError:  # unhashable: _entry names the error
            ent = None
        data = stream if type(stream) is bytes else bytes(stream)
        if ent is None:
            ent = self._entry(namespace)
            out = _eng.jar_decode(ent[1], data)
            if out is not None:
                return out  # type: ignore[no-any-return]
        codec = ent[2]
        fragment = codec.namespace == _XMLDSIG
        native = codec.decode_fragment(data) if fragment else codec.decode(data)
        js = to_jar(codec, to_json(codec, native, fragment=fragment), fragment=fragment)
        return json.dumps(js, ensure_ascii=False, separators=(",", ":"))

    def get_version(self) -> str:
        """Name and engine of this codec (logged by ``EXI.set_exi_codec``)."""
        return f"plugcharge-exi ({exi.IMPLEMENTATION} engine, schema-informed EXI 1.0, {self.grammars} grammars)"


def _register() -> None:
    # Only when the package is already loaded: importing it has side effects (logging set-up).
    mod = sys.modules.get("iso15118.shared.iexi_codec")
    if mod is not None:  # pragma: no cover - depends on the optional package
        mod.IEXICodec.register(JosevCodec)


_register()
