"""A second EXIficient oracle: grammars built by EXIficient itself from the XSDs (test/dev helper).

``../shared/tools/exificient_oracle.py`` drives the jar's *precompiled* grammars through its JSON
binding, which knows only the messages the jar was built for (no WPT, no ACDP, no ISO-2 fragment
decoding) and can express no xsi:type or xsi:nil. This helper uses the same jar
(``EXICodec.jar`` bundles the whole of EXIficient 1.0) the other way: ``GrammarFactory`` compiles
the XSD of a schema set from ``../shared/schemas``, and ``EXIResult`` / ``EXISource`` encode and
decode *XML*, with the factory settings the jar's own codec uses (valueMaxLength 0,
valuePartitionCapacity 0, no built-in element grammars or productions learnt; strict off;
bit-packed; header 0x80). ``values=True`` keeps EXIficient's default value partitions instead
(valueMaxLength and valuePartitionCapacity unbounded): repeated strings then become value-table
hits (EXI 1.0 section 7.3.3), as EXIficient writes them with its default options.

Messages go in as our dict shape and are rendered as namespace-qualified XML by walking the XSD
with ``xmlschema`` (never our compiled tables): element namespaces, attribute names and the
lexical form of each simple type come from the schema. The Java driver is compiled on first use
into a temporary directory; nothing of it ships.

    with XsdOracle(jar, schema_dir) as o:
        data = o.encode("iso20-wpt", xml_text)            # bytes
        xml = o.decode("iso20-wpt", data)                 # XML text
"""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from _exi_msggen import SCHEMA_SETS, MessageGenerator, _builtin

XSI = "http://www.w3.org/2001/XMLSchema-instance"

_DRIVER = r"""
import com.siemens.ct.exi.core.EXIFactory;
import com.siemens.ct.exi.core.helpers.DefaultEXIFactory;
import com.siemens.ct.exi.core.grammars.Grammars;
import com.siemens.ct.exi.grammars.GrammarFactory;
import com.siemens.ct.exi.main.api.sax.EXIResult;
import com.siemens.ct.exi.main.api.sax.EXISource;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import javax.xml.parsers.SAXParserFactory;
import javax.xml.transform.*;
import javax.xml.transform.sax.SAXSource;
import javax.xml.transform.stream.StreamResult;
import org.xml.sax.*;
import org.apache.xerces.xni.XMLResourceIdentifier;
import org.apache.xerces.xni.parser.XMLEntityResolver;
import org.apache.xerces.xni.parser.XMLInputSource;

public class XsdOracleDriver {
    static Map<String, Grammars> grammars = new HashMap<>();

    static EXIFactory factory(String xsd, boolean fragment, boolean learning, boolean values) throws Exception {
        // one Grammars object per mode: EXIficient keeps runtime state in it, and a stream of one
        // mode must not depend on streams of the other
        String gkey = (learning ? "L " : values ? "V " : "E ") + xsd;
        Grammars g = grammars.get(gkey);
        if (g == null) {
            // The xmldsig XSD names the W3C XMLSchema DTD; it is never fetched (no network):
            // external DTDs resolve to nothing, every other entity (the imported XSDs) as usual.
            XMLEntityResolver noDtd = new XMLEntityResolver() {
                public XMLInputSource resolveEntity(XMLResourceIdentifier id) {
                    String s = id.getLiteralSystemId();
                    if (s != null && s.endsWith(".dtd"))
                        return new XMLInputSource(id.getPublicId(), s, id.getBaseSystemId(), new StringReader(""), null);
                    return null;
                }
            };
            g = GrammarFactory.newInstance().createGrammars(xsd, noDtd);
            grammars.put(gkey, g);
        }
        EXIFactory f = DefaultEXIFactory.newInstance();
        if (!values) {  // else EXIficient's defaults: both unbounded, repeated values hit the table
            f.setValueMaxLength(0);
            f.setValuePartitionCapacity(0);
        }
        if (!learning) {  // the iso15118 codec's EXI Profile settings (the default here)
            f.setMaximumNumberOfBuiltInElementGrammars(0);
            f.setMaximumNumberOfBuiltInProductions(0);
        }
        f.setGrammars(g);
        f.setFragment(fragment);
        return f;
    }

    public static void main(String[] a) throws Exception {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        System.setOut(System.err);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Base64.Decoder b64d = Base64.getDecoder();
        Base64.Encoder b64e = Base64.getEncoder();
        String line;
        while ((line = in.readLine()) != null) {
            String[] p = line.split("\t", 5);   // id, op, xsd, fragment, base64 payload
            String r;
            try {
                boolean values = p[1].equals("V") || p[1].equals("U");
                EXIFactory f = factory(p[2], p[3].equals("1"), p[1].equals("L"), values);
                byte[] payload = b64d.decode(p[4]);
                if (p[1].equals("E") || p[1].equals("L") || p[1].equals("V")) {
                    ByteArrayOutputStream os = new ByteArrayOutputStream();
                    EXIResult res = new EXIResult(f);
                    res.setOutputStream(os);
                    SAXParserFactory spf = SAXParserFactory.newInstance();
                    spf.setNamespaceAware(true);
                    XMLReader xr = spf.newSAXParser().getXMLReader();
                    xr.setContentHandler(res.getHandler());
                    xr.parse(new InputSource(new ByteArrayInputStream(payload)));
                    os.close();
                    r = "OK\t" + b64e.encodeToString(os.toByteArray());
                } else {
                    EXISource src = new EXISource(f);
                    XMLReader xr = src.getXMLReader();
                    Transformer t = TransformerFactory.newInstance().newTransformer();
                    t.setOutputProperty(OutputKeys.OMIT_XML_DECLARATION, "yes");
                    StringWriter w = new StringWriter();
                    t.transform(new SAXSource(xr, new InputSource(new ByteArrayInputStream(payload))), new StreamResult(w));
                    r = "OK\t" + b64e.encodeToString(w.toString().getBytes(StandardCharsets.UTF_8));
                }
            } catch (Throwable t) { r = "ERR\t" + t.toString().replace('\n', ' ').replace('\t', ' '); }
            out.println(p[0] + "\t" + r);
        }
    }
}
"""


class XsdOracle:
    """One long-lived JVM; grammars compiled once per schema set. Not thread-safe."""

    def __init__(self, jar: str, schema_dir: str | Path) -> None:
        if not Path(jar).is_file():
            raise RuntimeError(f"no EXIficient jar at {jar}")
        if not shutil.which("java") or not shutil.which("javac"):
            raise RuntimeError("java and javac (JDK 17+) are required")
        self.schema_dir = Path(schema_dir).resolve()
        self._jar = jar
        self._dir = tempfile.mkdtemp(prefix="exi-xsd-oracle-")
        src = Path(self._dir, "XsdOracleDriver.java")
        src.write_text(_DRIVER)
        subprocess.run(["javac", "-nowarn", "-cp", jar, "-d", self._dir, str(src)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._seq = 0
        self._proc = subprocess.Popen(
            ["java", "-cp", f"{jar}{os.pathsep}{self._dir}", "XsdOracleDriver"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1,
        )

    def _ask(self, op: str, set_name: str, fragment: bool, payload: bytes) -> bytes:
        assert self._proc.stdin and self._proc.stdout
        self._seq += 1
        xsd = (self.schema_dir / SCHEMA_SETS[set_name].xsd).as_uri()
        self._proc.stdin.write(f"{self._seq}\t{op}\t{xsd}\t{int(fragment)}\t{base64.b64encode(payload).decode()}\n")
        self._proc.stdin.flush()
        seq, _, answer = self._proc.stdout.readline().rstrip("\n").partition("\t")
        if seq != str(self._seq):
            raise RuntimeError(f"oracle out of step: asked #{self._seq}, got {seq!r}")
        status, _, rest = answer.partition("\t")
        if status != "OK":
            raise ValueError(rest or "oracle gave no answer")
        return base64.b64decode(rest)

    def encode(self, set_name: str, xml: str, fragment: bool = False, learning: bool = False,
               values: bool = False) -> bytes:
        """EXI stream of an XML document (or fragment) under the schema set's XSD grammars;
        ``learning``: EXIficient's default built-in grammars (they learn), not the V2G settings;
        ``values``: EXIficient's default value partitions (repeated strings hit the table)."""
        return self._ask("L" if learning else "V" if values else "E", set_name, fragment, xml.encode("utf-8"))

    def decode(self, set_name: str, data: bytes, fragment: bool = False, values: bool = False) -> str:
        """XML text of an EXI stream (``values``: read with EXIficient's default value partitions)."""
        return self._ask("U" if values else "D", set_name, fragment, data).decode("utf-8")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()  # type: ignore[union-attr]
            self._proc.wait(timeout=10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "XsdOracle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- dict -> namespace-qualified XML, walking the XSD ------------------------------------------
def _split(qname: str) -> tuple[str, str]:
    if qname.startswith("{"):
        ns, _, local = qname[1:].partition("}")
        return ns, local
    return "", qname


class XmlRenderer:
    """Renders a message dict (our bytes shape) as XML text for one schema set.

    ``xsi`` maps a dotted element path to extra attributes for that element (e.g.
    ``{"V2G_Message.Body.X": {"xsi:nil": "true"}}``), for streams that carry second-level events.
    """

    def __init__(self, gen: MessageGenerator, set_name: str) -> None:
        self.gen = gen
        self.set_name = set_name
        self.schema = gen.schema(set_name)
        self._prefixes: dict[str, str] = {}

    def _prefix(self, ns: str) -> str:
        if ns == "http://www.w3.org/XML/1998/namespace":
            return "xml"  # bound by XML itself, never declared
        if ns not in self._prefixes:
            self._prefixes[ns] = f"n{len(self._prefixes)}"
        return self._prefixes[ns]

    def _qn(self, qname: str) -> str:
        ns, local = _split(qname)
        return f"{self._prefix(ns)}:{local}" if ns else local

    def _lex(self, t: Any, v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "NaN" if v != v else "INF" if v == float("inf") else "-INF" if v == float("-inf") else repr(v)
        if isinstance(v, list):
            return " ".join(str(x) for x in v)
        if isinstance(v, (bytes, bytearray)):
            b = _builtin(t)
            return bytes(v).hex().upper() if b == "hexBinary" else base64.b64encode(bytes(v)).decode("ascii")
        return str(v)

    def _children(self, el: Any, t: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        content = (el.type if t is None else t).content
        if not hasattr(content, "iter_elements"):
            return out
        for c in content.iter_elements():
            if not hasattr(c, "local_name") or c.local_name is None:
                continue
            for s in self.gen.substitutes(c):
                out.setdefault(s.local_name, s)
        return out

    def render(self, message: dict[str, Any], fragment: bool = False,
               xsi: dict[str, dict[str, str]] | None = None) -> str:
        (root, v), = message.items()
        if fragment:
            el = self.gen._global_or_local(self.set_name, root)
        else:
            el = self.gen._global(self.set_name, root)
        body: list[str] = []
        self._emit(el, v, body, root, xsi or {})
        decls = "".join(f" xmlns:{p}={quoteattr(ns)}" for ns, p in self._prefixes.items())
        decls += f' xmlns:xsi="{XSI}"'
        first = body[0]
        cut = first.index(">") if not first.endswith("/>") else len(first) - 2
        body[0] = first[:cut] + decls + first[cut:]
        return '<?xml version="1.0" encoding="UTF-8"?>' + "".join(body)

    def _emit(self, el: Any, v: Any, out: list[str], path: str, xsi: dict[str, dict[str, str]]) -> None:
        if isinstance(v, list):
            for item in v:
                self._emit(el, item, out, path, xsi)
            return
        name = self._qn(el.name)
        t = el.type
        extra = "".join(f" {k}={quoteattr(x)}" for k, x in xsi.get(path, {}).items())
        if not isinstance(v, dict):
            out.append(f"<{name}{extra}>{escape(self._lex(t, v))}</{name}>")
            return
        a_txt, inner = [], []
        items: dict[str, list[str]] = {}  # "$order": each child key's rendered items
        if "xsi:type" in v:
            # the named type's content from here on; the value a prefixed qname
            tq = v["xsi:type"]
            t = self.schema.maps.types[tq]
            ns, local = _split(tq)
            a_txt.append(f' xsi:type="{self._prefix(ns) + ":" if ns else ""}{local}"')
        attrs = {a.local_name: a for a in t.attributes.values()} if not t.is_simple() else {}
        kids = self._children(el, t) if not t.is_simple() and not t.has_simple_content() else {}
        for k, x in v.items():
            if k in ("xsi:type", "$order"):
                continue
            if k == "xsi:nil":
                a_txt.insert(1 if "xsi:type" in v else 0, f' xsi:nil="{"true" if x else "false"}"')
            elif k.startswith("@"):
                a_txt.append(f" {self._qn(k[1:])}={quoteattr(x)}")  # an undeclared attribute
            elif k == "value" and isinstance(x, list) and not t.is_simple():
                continue  # mixed content, one text per gap between the children (below)
            elif k == "value" and not t.is_simple() and not t.has_simple_content():
                inner.append(escape(x))  # text in element-only (or empty) content, where the dict has it
            elif k == "value":
                st = t if t.is_simple() else t.content
                inner.append(escape(self._lex(st, x)))
            elif k in attrs:
                a_txt.append(f" {self._qn(attrs[k].name)}={quoteattr(self._lex(attrs[k].type, x))}")
            elif k in kids:
                buf: list[str] = []
                for item in (x if isinstance(x, list) else [x]):
                    one: list[str] = []
                    self._emit(kids[k], item, one, f"{path}.{k}", xsi)
                    items.setdefault(k, []).append("".join(one))
                    buf.extend(one)
                inner.extend(buf)
            elif k.startswith("{"):
                for item in x:  # an undeclared or wildcard element, where the dict has it
                    one = []
                    self._emit_any(k, item, one, f"{path}.{k}", xsi)
                    items.setdefault(k, []).append("".join(one))
                    inner.extend(one)
            else:
                raise KeyError(f"{path}: {k!r} is neither an attribute nor a child element")
        if "$order" in v:  # the children in that order (the text, as gaps or before them)
            inner = [t_ for t_ in inner if not t_.startswith("<")] + _in_order(v["$order"], items)
        if isinstance(v.get("value"), list) and not t.is_simple():
            inner = _interleave(v["value"], inner)
        out.append(f"<{name}{extra}{''.join(a_txt)}>{''.join(inner)}</{name}>")

    def _emit_any(self, qname: str, v: Any, out: list[str], path: str, xsi: dict[str, dict[str, str]]) -> None:
        """An element outside the schema's content model: a global element of the set renders
        from its declaration, anything else from the dict alone (attributes, text, children in
        the dict's order)."""
        el = self.schema.maps.elements.get(qname)
        if el is not None:
            self._emit(el, v, out, path, xsi)
            return
        ns, local = _split(qname)
        name = f"{self._prefix(ns)}:{local}" if ns else local
        attrs, inner = [], []
        items: dict[str, list[str]] = {}
        for k, x in v.items():
            if k == "$order":
                continue
            if k == "xsi:type":
                tns, tlocal = _split(x)
                attrs.append(f' xsi:type="{self._prefix(tns) + ":" if tns else ""}{tlocal}"')
            elif k.startswith("@"):
                attrs.append(f" {self._qn(k[1:])}={quoteattr(x)}")
            elif k == "value" and isinstance(x, list) and "xsi:type" not in v:
                continue  # one text per gap between the children (below)
            elif k == "value":
                inner.append(escape(self._lex(None, x)))
            else:
                for item in x:
                    one: list[str] = []
                    self._emit_any(k, item, one, f"{path}.{k}", xsi)
                    items.setdefault(k, []).append("".join(one))
                    inner.extend(one)
        if "$order" in v:
            inner = [t_ for t_ in inner if not t_.startswith("<")] + _in_order(v["$order"], items)
        if isinstance(v.get("value"), list) and "xsi:type" not in v:
            inner = _interleave(v["value"], inner)
        out.append(f"<{name}{''.join(attrs)}>{''.join(inner)}</{name}>")


def _in_order(order: list[str], items: dict[str, list[str]]) -> list[str]:
    """The rendered children in "$order" (each key takes its next item)."""
    taken: dict[str, int] = {}
    out = []
    for k in order:
        i = taken.get(k, 0)
        out.append(items[k][i])
        taken[k] = i + 1
    if any(taken.get(k, 0) != len(x) for k, x in items.items()):
        raise ValueError(f"$order {order} does not name every child once")
    return out


def _interleave(gaps: list[str], children: list[str]) -> list[str]:
    """Mixed content: text gap 0, child 0, gap 1, ... (len(gaps) == len(children) + 1)."""
    if len(gaps) != len(children) + 1:
        raise ValueError(f"{len(gaps)} texts for {len(children)} children")
    out = [escape(gaps[0])]
    for c, g in zip(children, gaps[1:]):
        out += [c, escape(g)]
    return out
