"""The package layout as a rule, checked on the imports of the installed sources.

* No import circle in ``exi``, ``pki`` and ``plugcharge`` (every import statement counts, also the
  ones inside functions and under ``TYPE_CHECKING``).
* ``exi`` and ``pki`` import neither each other nor ``plugcharge``.
* ``plugcharge``'s rooms import only what the layout allows (README, "Layout of plugcharge"):
  ``core`` nothing of plugcharge outside core and no third-party package but ``exi``; a protocol
  package ``core`` and ``pnc``; ``pnc`` ``core``; ``net`` ``core`` (and the runner the backend
  interface); ``backends`` ``core`` and ``pnc``; ``cli`` anything; nothing imports ``cli``.
"""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Iterable, Mapping

PACKAGES = ("exi", "pki", "plugcharge")
#: protocol packages (implemented or planned): each may import core and pnc, never another one
PROTOCOLS = {"iso2", "din", "iso20"}
#: room -> rooms it may import (its own room always)
ROOM_RULES: Mapping[str, set[str]] = {
    "core": set(),
    "pnc": {"core"},
    "net": {"core"},
    "backends": {"core", "pnc"},
    "sessions": {"core", "pnc", *PROTOCOLS},
    **{p: {"core", "pnc"} for p in PROTOCOLS},
}
#: the named exceptions to ROOM_RULES (module -> module)
EXCEPTIONS = {("plugcharge.net.runner", "plugcharge.backends.base")}
#: rooms whose importers are not restricted by ROOM_RULES (but still never import cli)
FREE_ROOMS = {"cli", "__init__", "__main__"}


def _package_files(package: str) -> dict[str, Path]:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    out: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path, is_package: bool, modules: Iterable[str] = ()) -> set[str]:
    """Every module an import statement in ``path`` names (absolute, dotted): ``from a import b`` is
    ``a.b`` when that is a module of ``modules``, else ``a`` (importing a submodule runs its
    package's ``__init__`` first, which is no edge of its own)."""
    known = set(modules)
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    base = module.split(".") if is_package else module.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    return out


def _extension_modules(package: str) -> set[str]:
    """Compiled modules of ``package`` (``exi._cengine``, ``pki._fastcert``): nodes without imports."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, package
    root = Path(next(iter(spec.submodule_search_locations)))
    return {".".join([*p.relative_to(root.parent).parent.parts, p.name.split(".")[0]])
            for suffix in ("*.so", "*.pyd") for p in root.rglob(suffix)}


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of PACKAGES it imports."""
    files: dict[str, Path] = {}
    compiled: set[str] = set()
    for package in PACKAGES:
        files.update(_package_files(package))
        compiled |= _extension_modules(package)
    known = set(files) | compiled
    graph: dict[str, set[str]] = {m: set() for m in compiled}
    for module, path in files.items():
        names = _imports(module, path, path.name == "__init__.py", known)
        graph[module] = {n for n in names if n in known and n != module}
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def room(module: str) -> str:
    """The room of a plugcharge module: core, pnc, net, backends, cli, a protocol, sessions, __init__, __main__."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Every import in ``graph`` that breaks a rule of the layout, as ``importer -> imported (why)``."""
    bad: list[str] = []
    for module, targets in graph.items():
        top = module.split(".")[0]
        for target in sorted(targets):
            ttop = target.split(".")[0]
            if top in ("exi", "pki"):
                if ttop != top:
                    bad.append(f"{module} -> {target} ({top} imports only itself)")
                continue
            if top != "plugcharge" or ttop != "plugcharge":
                continue
            src, dst = room(module), room(target)
            if dst == "cli" and src not in ("cli", "__main__"):
                bad.append(f"{module} -> {target} (nothing imports cli)")
            elif src in FREE_ROOMS or src == dst or (module, target) in EXCEPTIONS:
                continue
            elif src not in ROOM_RULES:
                bad.append(f"{module} -> {target} (room {src!r} has no rule: add it to the layout)")
            elif dst not in ROOM_RULES[src]:
                bad.append(f"{module} -> {target} ({src} may import {sorted(ROOM_RULES[src]) or 'nothing'} only)")
    return bad


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_room_rules():
    assert violations(import_graph()) == []


def test_core_imports_only_the_standard_library_and_exi():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    files = _package_files("plugcharge")
    bad = []
    for module, path in files.items():
        if room(module) != "core":
            continue
        for name in _imports(module, path, path.name == "__init__.py", files):
            top = name.split(".")[0]
            if top not in stdlib and top not in ("exi", "plugcharge"):
                bad.append(f"{module} -> {name}")
    assert bad == []


def test_the_layout_has_every_room_and_the_checks_detect_breaches():
    graph = import_graph()
    rooms = {room(m) for m in graph if m.startswith("plugcharge")}
    assert {"core", "iso2", "pnc", "net", "backends", "cli", "sessions"} <= rooms
    assert not any(m.startswith("plugcharge.") and room(m) not in {*ROOM_RULES, *FREE_ROOMS} for m in graph)
    # the walk sees imports inside functions (pki.issue imports pki._broken lazily)
    assert "pki._broken" in graph["pki.issue"]
    # and the checks find what they are for
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert violations({
        "plugcharge.core.session": {"plugcharge.pnc.certs"},
        "plugcharge.iso2.ev": {"plugcharge.din.ev", "plugcharge.net.sdp", "plugcharge.core.fsm"},
        "plugcharge.backends.base": {"plugcharge.cli.demo"},
        "plugcharge.net.runner": {"plugcharge.backends.base"},
        "pki.issue": {"exi._codec"},
    }) == [
        "plugcharge.core.session -> plugcharge.pnc.certs (core may import nothing only)",
        "plugcharge.iso2.ev -> plugcharge.din.ev (iso2 may import ['core', 'pnc'] only)",
        "plugcharge.iso2.ev -> plugcharge.net.sdp (iso2 may import ['core', 'pnc'] only)",
        "plugcharge.backends.base -> plugcharge.cli.demo (nothing imports cli)",
        "pki.issue -> exi._codec (pki imports only itself)",
    ]
