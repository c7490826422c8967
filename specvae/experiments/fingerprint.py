"""Code fingerprints: which code a stored run was computed with, and whether that code has changed since.

A result is keyed by the hash of its config (:mod:`~specvae.experiments.hashing`), which says nothing about the
code: after a loss or the training loop changes, an old result would be reused without a word. So every result
also records the fingerprint of the code it depends on, in its provenance::

    "code": {"format": 2, "run_module": "specvae.experiments.simpler_is_better", "entry": "run",
             "fingerprint": "3f0c…" (16 hex digits, the hash of all unit hashes),
             "units": {"specvae.experiments.simpler_is_better": {"run": "ab12…", "_load": "8e45…", ...},
                       "specvae.train": {"fit": "9e41…", ...},
                       "specvae.data.loaders": {"F": "07c2…" (the binding `import torch.nn.functional as F`),
                                                ...}, ...}}

What is covered
---------------
The *definitions* the run function can reach, not whole modules. Each module is cut into *units*, one per
name bound at its top level: a ``def`` or ``class`` (with all its methods), an assignment, or an import binding
(``from torch import nn`` is the unit ``module:nn``; so a name that starts pointing at other code changes a
unit). Statements run at import time that bind no name plainly (``if``/``try`` blocks, calls, ``X[k] = v``) form
the unit ``module:<toplevel>``. Starting from the run function (``run_module:entry``), every name a reached unit
uses is followed, read from the code with :mod:`ast`: a name of its own module → that module's unit; an
imported name → the import's unit and the definition it points at in the other module (through re-exporting
package ``__init__`` files, which then add only their one import binding); ``mod.attr`` on an imported module →
that module's unit ``attr``; function-local imports likewise; a function that rebinds a module-level name
(``global name``) counts wherever that name is used.

Conservative where the reading is unclear, it takes whole modules (every unit of it): a module used as a value
(``getattr(mod, name)``, passed around), ``importlib.import_module("literal")``, a unit that reads
``globals()``/``vars()``/``eval``/``exec``, a name a module does not bind (after a lazy ``__getattr__`` export is
resolved by importing the package and asking the object's ``__module__``; the ``__getattr__`` unit and what it
reads count too). A run function with an unannotated parameter takes every class of its module (its config
object's methods cannot be found from the name otherwise). Every module imported along the way contributes its
``<toplevel>`` unit (import-time side effects), but not its definitions. Imports inside ``if TYPE_CHECKING:``
and ``if __name__ == "__main__":`` blocks are skipped. So a report or plot function in a chapter module, or a
report module it imports, does not stale a run unless the run function reaches it.

Left out (:data:`EXCLUDED_MODULES`): bookkeeping that cannot change a number — the results store, the grid
runner, config hashing, presets, provenance, atomic writes, this module and :mod:`code_equivalence`, the
``specvae.experiments`` package ``__init__`` (re-exports of those), ``specvae.book``, ``specvae.cli``,
``specvae.plots``, ``specvae.paths``, ``specvae.gpu`` (staging for a GPU machine) and the top-level ``specvae``
package (its version string); and (:data:`EXCLUDED_PACKAGES`) the throughput benchmarks ``specvae.bench.*``.
Third-party code is not fingerprinted: its versions (torch, NumPy, Python) are in the provenance already.

Each unit is hashed by its *code*, not its text: the AST with every docstring and bare string statement removed,
serialised without line numbers (:func:`code_hash` does the same for a whole module). Comments, docstrings and
formatting edits leave the fingerprint unchanged; any change of code (a constant, an operator, an import)
changes it.

Checking a stored run
---------------------
:func:`check_record` compares a stored record with the current code of the checkout: ``"current"`` (same
fingerprint), ``"stale"`` (the units that changed, appeared (``+``) or disappeared (``-``) are named) or
``"unknown"``. A record stored before fingerprints existed is *backfilled* from git: when its provenance says
``git_dirty: false`` and the repository has its ``git_commit``, the units the run reaches now are hashed as they
were at that commit (``git show <commit>:<path>``) and compared unit by unit; otherwise (uncommitted changes, no
commit, commit not in the repository) the run's code is ``"unknown"`` — never shown as current.

A maintainer may declare a reviewed change inert for a chapter in ``code_equivalence.json`` beside the chapters'
result folders (:mod:`~specvae.experiments.code_equivalence`): a stale run whose every changed unit is covered
by a matching declaration counts as current, and says so (``CodeState.declared``).

:func:`track_code` is the switch ``specvae run`` uses: inside it, every record :meth:`ResultStore.load` returns
is checked and counted, and with ``rerun_stale=True`` stale and unknown records are treated as missing, so the
chapter's ``run_all`` retrains them (``run_grid`` first removes the old code's checkpoints, see
:func:`prepare_rerun_dir`).
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import subprocess
import sys
import types
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

__all__ = [
    "EXCLUDED_MODULES",
    "EXCLUDED_PACKAGES",
    "PACKAGES",
    "FORMAT",
    "TOPLEVEL",
    "ABSENT",
    "CodeFingerprint",
    "CodeState",
    "CodeSummary",
    "CodeTracker",
    "FingerprintError",
    "active_tracker",
    "check_record",
    "check_records",
    "chapter_module",
    "module_exists",
    "clear_caches",
    "code_fingerprint",
    "code_hash",
    "code_record",
    "dependencies",
    "entry_of",
    "fingerprint_at_commit",
    "module_units",
    "prepare_rerun_dir",
    "run_module_of",
    "track_code",
    "unit_module",
]

#: layout version of ``provenance.code`` (2: per-definition units; 1, per module, was never stored on main)
FORMAT = 2

#: top-level packages whose modules are followed and fingerprinted (a test may add its own package)
PACKAGES: tuple[str, ...] = ("specvae",)

#: modules that cannot change a number; neither hashed nor followed (see the module docstring)
EXCLUDED_MODULES: frozenset[str] = frozenset({
    "specvae",                               # the package __init__: a version string and a docstring
    "specvae.experiments",                   # re-exports of the bookkeeping modules below
    "specvae.experiments.store",             # results store
    "specvae.experiments.grid",              # grid runner
    "specvae.experiments.hashing",           # config hashes
    "specvae.experiments.presets",           # preset lookup (its output is part of the hashed config)
    "specvae.experiments.provenance",        # git commit, versions, device
    "specvae.experiments.atomic",            # atomic writes
    "specvae.experiments.fingerprint",       # this module
    "specvae.experiments.code_equivalence",  # declared equivalences of code
    "specvae.book",                          # notebook execution and the book build
    "specvae.cli",                           # the command line
    "specvae.plots",                         # figures
    "specvae.paths",                         # where files live
    "specvae.gpu",                           # staging a grid for a GPU machine and unpacking its results
})

#: packages left out with every module in them: throughput benchmarks (a chapter's ``bench_families`` imports
#: them inside the chapter module, but no run does)
EXCLUDED_PACKAGES: frozenset[str] = frozenset({"specvae.bench"})

#: name of the unit of a module's import-time statements that bind no name plainly
TOPLEVEL = "<toplevel>"

#: the hash of a unit (or module) that does not exist
ABSENT = "absent"

#: name of the file :func:`prepare_rerun_dir` leaves in a run's checkpoint folder
RUN_DIR_MARKER = "code_fingerprint.json"

_HASH_LENGTH = 16
_ABSENT = ABSENT
#: names whose use reads a module's namespace by string: the unit then takes its whole module
_DYNAMIC_READS = frozenset({"globals", "vars", "eval", "exec", "__import__"})


class FingerprintError(RuntimeError):
    """The code of a run module cannot be found or read."""


# ------------------------------------------------------------------------------------------------------------
# hashing code
# ------------------------------------------------------------------------------------------------------------
def _is_string_statement(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _strip_strings(tree: ast.AST) -> ast.AST:
    """Remove docstrings and every other bare string statement (no-ops) from every statement list."""
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                kept = [s for s in value if not _is_string_statement(s)]
                if not kept and name == "body":
                    kept = [ast.Pass()]  # a body that was only a docstring (same as one that is `pass`)
                setattr(node, name, kept)
    return tree


def _serialise(node: Any) -> str:
    """A Python-version-stable text of an AST: node type and non-empty fields, no positions."""
    if isinstance(node, ast.AST):
        parts = [type(node).__name__]
        for name in node._fields:
            value = getattr(node, name, None)
            if value is None or (isinstance(value, list) and not value):
                continue  # fields added in newer Pythons default to None / []: leave them out
            parts.append(f"{name}={_serialise(value)}")
        return "(" + " ".join(parts) + ")"
    if isinstance(node, list):
        return "[" + ",".join(_serialise(v) for v in node) + "]"
    return repr(node)


def _digest(kind: str, text: str) -> str:
    return hashlib.sha256(f"specvae-{kind}-v{FORMAT}\n{text}".encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def code_hash(source: str | bytes, where: str = "<source>") -> str:
    """16-hex-digit hash of the *code* of a module: docstrings, comments and layout do not count.

    Raises:
        SyntaxError: ``source`` is not valid Python (the message names ``where``).
    """
    return _digest("code", _serialise(_strip_strings(ast.parse(source, filename=where))))


def _overall(units: Mapping[str, str]) -> str:
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(units.items()))
    return _digest("fingerprint", text)


def unit_module(key: str) -> str:
    """The module of a unit key ``module:name`` (a key without ``:`` is a module already)."""
    return key.lstrip("+-").partition(":")[0]


def module_units(units: Mapping[str, str], module: str) -> str:
    """The combined hash of the units of ``module`` among ``units`` (:data:`ABSENT` when it has none)."""
    mine = {k: v for k, v in units.items() if unit_module(k) == module}
    return _overall(mine) if mine else ABSENT


# ------------------------------------------------------------------------------------------------------------
# finding modules
# ------------------------------------------------------------------------------------------------------------
def _followed(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _module_file(name: str) -> tuple[Path, bool] | None:
    """``(file, is_package)`` of module ``name`` on disk, or None. Does not import the module itself (a
    submodule's parent packages may be imported to find their folder)."""
    loaded = sys.modules.get(name)
    file = getattr(loaded, "__file__", None) if loaded is not None else None
    if file and file.endswith(".py"):
        path = Path(file)
        return path, path.name == "__init__.py"
    parent, _, leaf = name.rpartition(".")
    if parent:
        info = _module_file(parent)
        if info is None or not info[1]:
            return None
        folder = info[0].parent
        for path, is_pkg in ((folder / leaf / "__init__.py", True), (folder / f"{leaf}.py", False)):
            if path.is_file():
                return path, is_pkg
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    return path, path.name == "__init__.py"


def _is_module(name: str) -> bool:
    return bool(name) and _module_file(name) is not None


def module_exists(name: str) -> bool:
    """Whether module ``name`` has a ``.py`` source file (found without importing it)."""
    return _is_module(name)


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = here if is_package else here.rpartition(".")[0]
    for _ in range(level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{module}" if module else base


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _plain_target(node: ast.expr) -> bool:
    """A target that only binds names (``a``, ``a, (b, *c)``), not ``x.attr`` or ``x[k]``."""
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_plain_target(e) for e in node.elts)
    if isinstance(node, ast.Starred):
        return _plain_target(node.value)
    return False


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements executed at import time (also inside module-level if/try/with blocks)."""
    for stmt in body:
        if isinstance(stmt, ast.If) and (_is_type_checking(stmt.test) or _is_main_guard(stmt.test)):
            yield from _module_level(stmt.orelse)
            continue
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)) or type(stmt).__name__ == "TryStar":
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(stmt, field, []) or [])
            for handler in getattr(stmt, "handlers", []) or []:
                yield from _module_level(handler.body)


# ------------------------------------------------------------------------------------------------------------
# a module cut into units
# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Binding:
    """What an import binds a name to: ``kind="module"`` (the module ``module``) or ``kind="from"`` (attribute
    ``name`` of module ``module``)."""

    kind: str
    module: str
    name: str | None = None


def _import_bindings(stmt: ast.Import | ast.ImportFrom, here: str, is_package: bool
                     ) -> Iterator[tuple[str, _Binding, ast.stmt, list[str]]]:
    """``(bound name, binding, the statement restricted to that name, modules it loads)`` of an import."""
    if isinstance(stmt, ast.Import):
        for alias in stmt.names:
            bound = alias.asname or alias.name.partition(".")[0]
            target = alias.name if alias.asname else bound
            yield bound, _Binding("module", target), ast.Import(names=[alias]), [alias.name]
        return
    if stmt.module == "__future__":
        return
    source = _absolute(stmt.module, stmt.level, here, is_package)
    for alias in stmt.names:
        if alias.name == "*":
            continue
        restricted = ast.ImportFrom(module=source, names=[alias], level=0)
        yield alias.asname or alias.name, _Binding("from", source, alias.name), restricted, \
            [source, f"{source}.{alias.name}"]


@dataclasses.dataclass
class _Refs:
    """What a unit's code uses: bare ``names``, attribute ``chains`` on a name (``("np", "fft", "fft2")``),
    ``local`` import bindings (function-local imports), whole ``modules`` (``import_module("literal")``),
    modules it imports (``loads``) and whether it reads its module's namespace by string (``dynamic``)."""

    names: set[str] = dataclasses.field(default_factory=set)
    chains: set[tuple[str, ...]] = dataclasses.field(default_factory=set)
    local: dict[str, list[_Binding]] = dataclasses.field(default_factory=dict)
    modules: set[str] = dataclasses.field(default_factory=set)
    prefixes: set[str] = dataclasses.field(default_factory=set)
    loads: set[str] = dataclasses.field(default_factory=set)
    dynamic: bool = False


def _is_globals_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "globals"
            and not node.args)


def _refs_of(stmts: list[ast.stmt], here: str, is_package: bool, *, lazy_hook: bool = False) -> _Refs:
    """The references of a unit's statements (see :class:`_Refs`). In a lazy ``__getattr__`` hook
    (``lazy_hook``) imports by computed name are not followed: the names it serves are resolved where used."""
    refs = _Refs()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for bound, binding, _, loads in _import_bindings(node, here, is_package):
                refs.local.setdefault(bound, []).append(binding)
                refs.loads.update(loads)
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                refs.modules.add(_absolute(node.module, node.level, here, is_package))
            return
        if isinstance(node, ast.Attribute):
            chain: list[str] = []
            cur: ast.AST = node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name):
                refs.chains.add((cur.id, *reversed(chain)))
                return
            if _is_globals_call(cur) and chain[-1] in ("update", "setdefault", "__setitem__"):
                return  # globals().update(...): binds names (found where they are used), reads none
            visit(cur)
            return
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and _is_globals_call(node.value):
            visit(node.slice)  # globals()[name] = value: a write
            return
        if isinstance(node, ast.Name):
            if node.id != "__all__":  # the star-import list: star imports take whole modules anyway
                refs.names.add(node.id)
            if node.id in _DYNAMIC_READS:
                refs.dynamic = True
            return
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and node.args:
                if isinstance(func, ast.Attribute):
                    visit(func)  # importlib.import_module
                for child in [*node.args, *node.keywords]:
                    visit(child)
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if not lazy_hook:
                        refs.modules.add(arg.value)
                elif not lazy_hook:
                    prefix = ""
                    if (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant)
                            and isinstance(arg.values[0].value, str)):
                        prefix = arg.values[0].value
                    if prefix.endswith(".") and prefix.count(".") >= 1:
                        refs.prefixes.add(prefix.rstrip("."))  # every module of that package
                    else:
                        refs.dynamic = True
                return
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in stmts:
        visit(stmt)
    return refs


class _Module:
    """A module's code cut into units: ``units`` = {name: statements binding it at top level},
    ``imports`` = {name: import bindings}, ``TOPLEVEL`` = the other import-time statements."""

    def __init__(self, name: str, source: str | bytes, is_package: bool, where: str) -> None:
        self.name = name
        self.is_package = is_package
        tree = _strip_strings(ast.parse(source, filename=where))
        self.units: dict[str, list[ast.stmt]] = {}
        self.imports: dict[str, list[_Binding]] = {}
        self.toplevel: list[ast.stmt] = []
        self.toplevel_names: set[str] = set()
        self.classes: list[str] = []
        self.loads: set[str] = set()
        self.global_writers: dict[str, set[str]] = {}  # name -> units that assign it through `global name`
        self._refs: dict[str, _Refs] = {}
        self._read(tree.body)
        for unit, stmts in self.units.items():
            for node in (n for s in stmts for n in ast.walk(s)):
                if isinstance(node, ast.Global):
                    for name in node.names:
                        self.global_writers.setdefault(name, set()).add(unit)
        self.digests: dict[str, str] = {n: _digest("unit", _serialise(s)) for n, s in self.units.items()}
        if self.toplevel:
            self.digests[TOPLEVEL] = _digest("unit", _serialise(self.toplevel))

    def _bind(self, name: str, stmt: ast.stmt) -> None:
        self.units.setdefault(name, []).append(stmt)

    def _read(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if _is_string_statement(stmt):
                continue
            if isinstance(stmt, ast.If) and (_is_type_checking(stmt.test) or _is_main_guard(stmt.test)):
                self._read(stmt.orelse)
                continue
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self._bind(stmt.name, stmt)
                if isinstance(stmt, ast.ClassDef):
                    self.classes.append(stmt.name)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for bound, binding, restricted, loads in _import_bindings(stmt, self.name, self.is_package):
                    self._bind(bound, restricted)
                    self.imports.setdefault(bound, []).append(binding)
                    self.loads.update(loads)
                if isinstance(stmt, ast.ImportFrom) and any(a.name == "*" for a in stmt.names):
                    self.toplevel.append(stmt)  # a star import: its names are found through <toplevel>
                    self.loads.add(_absolute(stmt.module, stmt.level, self.name, self.is_package))
            elif isinstance(stmt, ast.Assign) and all(_plain_target(t) for t in stmt.targets):
                for target in stmt.targets:
                    for name in _targets(target):
                        self._bind(name, stmt)
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and isinstance(stmt.target, ast.Name):
                self._bind(stmt.target.id, stmt)
            else:
                self.toplevel.append(stmt)
                for inner in list(_module_level([stmt]))[1:]:
                    self._note_nested(inner)

    def _note_nested(self, stmt: ast.stmt) -> None:
        """Names bound inside a compound import-time statement resolve to ``<toplevel>`` (and its imports)."""
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.toplevel_names.add(stmt.name)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for bound, binding, _, loads in _import_bindings(stmt, self.name, self.is_package):
                self.toplevel_names.add(bound)
                self.imports.setdefault(bound, []).append(binding)
                self.loads.update(loads)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                self.toplevel_names.update(_targets(target))
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign, ast.For)):
            self.toplevel_names.update(_targets(stmt.target))

    def binds(self, name: str) -> bool:
        return name in self.units or name in self.toplevel_names or name in self.global_writers

    def refs(self, unit: str) -> _Refs:
        if unit not in self._refs:
            stmts = self.toplevel if unit == TOPLEVEL else self.units.get(unit, [])
            self._refs[unit] = _refs_of(stmts, self.name, self.is_package, lazy_hook=unit == "__getattr__")
        return self._refs[unit]

    def entry_needs_classes(self, entry: str) -> bool:
        """Whether function ``entry`` has a parameter without annotation (other than ``self``/``cls``)."""
        for stmt in self.units.get(entry, []):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = stmt.args
                params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
                if any(p.annotation is None and p.arg not in ("self", "cls") for p in params):
                    return True
        return False


_MODULE_CACHE: dict[tuple[str, str, bool, str], _Module] = {}


def _load_module(name: str, path: Path, is_package: bool) -> _Module:
    """The units of a module file (cached by its content)."""
    source = path.read_bytes()
    key = (name, str(path), is_package, hashlib.sha1(source).hexdigest())
    cached = _MODULE_CACHE.get(key)
    if cached is None:
        cached = _MODULE_CACHE[key] = _Module(name, source, is_package, str(path))
    return cached


def clear_caches() -> None:
    """Forget parsed modules and resolved names (for tests that rewrite a package's code)."""
    _MODULE_CACHE.clear()
    _DYNAMIC.clear()
    _module_at.cache_clear()
    _has_commit.cache_clear()
    _toplevel.cache_clear()


_DYNAMIC: dict[tuple[str, str], tuple[str, ...] | None] = {}


def _dynamic_lookup(module: str, name: str) -> tuple[str, ...] | None:
    """Where attribute ``name`` of ``module`` comes from, by importing ``module`` (a lazy export):
    ``("module", m)``, ``("attr", owner, name)`` for a class or function, or None when unclear."""
    key = (module, name)
    if key not in _DYNAMIC:
        found: tuple[str, ...] | None = None
        try:
            obj = getattr(importlib.import_module(module), name)
        except Exception:  # noqa: BLE001 - a broken module or an unknown name: unclear
            obj = None
        if isinstance(obj, types.ModuleType):
            found = ("module", obj.__name__)
        elif obj is not None and (isinstance(obj, type) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__")):
            owner, own_name = getattr(obj, "__module__", None), getattr(obj, "__name__", None)
            if owner and own_name and (owner, own_name) != (module, name):
                found = ("attr", owner, own_name)
        _DYNAMIC[key] = found
    return _DYNAMIC[key]


# ------------------------------------------------------------------------------------------------------------
# the units a run function reaches
# ------------------------------------------------------------------------------------------------------------
class _Closure:
    """Follows names from an entry unit through modules (see the module docstring); ``units`` = {key: hash}."""

    def __init__(self, packages: tuple[str, ...], excluded: frozenset[str], excluded_packages: frozenset[str],
                 keep: str) -> None:
        self.packages = packages
        self.excluded = excluded
        self.excluded_packages = excluded_packages
        self.keep = keep  # the run module: never left out
        self.units: dict[str, str] = {}
        self.files: dict[str, Path] = {}
        self._done: set[tuple[Any, ...]] = set()
        self._todo: list[tuple[Any, ...]] = []

    # -- modules ---------------------------------------------------------------------------------------
    def left_out(self, name: str) -> bool:
        if name == self.keep:
            return False
        if not _followed(name, self.packages):
            return True
        return name in self.excluded or any(name == p or name.startswith(p + ".") for p in self.excluded_packages)

    def module(self, name: str) -> _Module | None:
        if self.left_out(name):
            return None
        info = _module_file(name)
        if info is None:
            return None  # e.g. an optional module imported inside try/except that does not exist
        self.files.setdefault(name, info[0])
        return _load_module(name, *info)

    def _submodules(self, package: str) -> list[str]:
        info = _module_file(package)
        if info is None or not info[1]:
            return []
        folder = info[0].parent
        out = []
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            if parts and all(p.isidentifier() for p in parts):
                out.append(".".join((package, *parts)))
        return out

    # -- the work list ---------------------------------------------------------------------------------
    def push(self, *task: Any) -> None:
        if task not in self._done:
            self._done.add(task)
            self._todo.append(task)

    def run(self) -> None:
        while self._todo:
            task = self._todo.pop()
            getattr(self, f"_do_{task[0]}")(*task[1:])

    def _do_touch(self, name: str) -> None:
        """Module ``name`` is imported: its parents and its module-level imports are too; each one's
        ``<toplevel>`` unit counts (import-time side effects), not its definitions."""
        parent = name.rpartition(".")[0]
        if parent:
            self.push("touch", parent)
        mod = self.module(name)
        if mod is None:
            return
        if TOPLEVEL in mod.digests:
            self.push("unit", name, TOPLEVEL)
        for other in mod.loads:
            if _followed(other, self.packages) and _is_module(other):
                self.push("touch", other)

    def _do_unit(self, module: str, unit: str) -> None:
        mod = self.module(module)
        if mod is None or unit not in mod.digests:
            return
        self.units[f"{module}:{unit}"] = mod.digests[unit]
        self.push("touch", module)
        refs = mod.refs(unit)
        if refs.dynamic:
            self.push("whole", module)
        local = tuple(sorted((k, tuple(v)) for k, v in refs.local.items()))
        for name in refs.names:
            self.push("name", module, local, name, ())
        for chain in refs.chains:
            self.push("name", module, local, chain[0], tuple(chain[1:]))
        for other in refs.modules:
            self.push("whole", other)
            self.push("touch", other)
        for prefix in refs.prefixes:
            for other in self._submodules(prefix) if _followed(prefix, self.packages) else []:
                self.push("whole", other)
        for other in refs.loads:
            if _followed(other, self.packages) and _is_module(other):
                self.push("touch", other)

    def _do_name(self, module: str, local: tuple, name: str, rest: tuple[str, ...]) -> None:
        """Name ``name`` used in ``module`` (with the using unit's local imports ``local``), followed by the
        attribute chain ``rest``."""
        for bound, bindings in local:
            if bound == name:
                for binding in bindings:
                    self._follow(binding, rest)
        mod = self.module(module)
        if mod is None:
            return
        if name in mod.units:
            self.push("unit", module, name)
        if name in mod.toplevel_names:
            self.push("unit", module, TOPLEVEL)
        for writer in sorted(mod.global_writers.get(name, ())):
            self.push("unit", module, writer)  # a function that rebinds the module-level name
        for binding in mod.imports.get(name, []):
            self._follow(binding, rest)

    def _follow(self, binding: _Binding, rest: tuple[str, ...]) -> None:
        if binding.kind == "module":
            self.push("modobj", binding.module, rest)
        else:
            self.push("attr", binding.module, binding.name, rest)

    def _do_modobj(self, module: str, rest: tuple[str, ...]) -> None:
        """Module ``module`` used as a value (``rest`` empty: the whole module) or as ``module.rest[0]...``."""
        if not _followed(module, self.packages):
            return
        self.push("touch", module)
        if rest:
            self.push("attr", module, rest[0], rest[1:])
        else:
            self.push("whole", module)

    def _do_attr(self, module: str, name: str, rest: tuple[str, ...]) -> None:
        """Attribute ``name`` of module ``module`` (then ``.rest``)."""
        if not _followed(module, self.packages):
            return
        sub = f"{module}.{name}"
        mod = self.module(module)
        if mod is None:  # left out (or missing): only its submodules can still count
            if _followed(sub, self.packages) and _is_module(sub):
                self.push("modobj", sub, rest)
            return
        self.push("touch", module)
        if mod.binds(name):
            self.push("name", module, (), name, rest)
            return
        if _is_module(sub):
            self.push("modobj", sub, rest)
            return
        # not bound in the code: a lazy export (``__getattr__``), globals().update(...), a star import
        if "__getattr__" in mod.units:
            self.push("unit", module, "__getattr__")
        found = _dynamic_lookup(module, name)
        if found is not None and found[0] == "module":
            self.push("modobj", found[1], rest)
        elif found is not None and (owner := self.module(found[1])) is not None and owner.binds(found[2]):
            self.push("attr", found[1], found[2], rest)
        elif found is not None and self.left_out(found[1]):
            pass  # defined in a module that is not fingerprinted (third party, bookkeeping)
        else:  # unclear: the whole module, and for a lazy package every module in it
            self.push("whole", module)
            if mod.is_package and "__getattr__" in mod.units:
                for other in self._submodules(module):
                    self.push("whole", other)

    def _do_whole(self, module: str) -> None:
        mod = self.module(module)
        if mod is None:
            return
        for unit in mod.digests:
            self.push("unit", module, unit)


def _closure(run_module: str, entry: str | None, packages: Iterable[str] | None,
             exclude: Iterable[str] | None) -> _Closure:
    packages = tuple(packages if packages is not None else PACKAGES)
    excluded = frozenset(exclude if exclude is not None else EXCLUDED_MODULES)
    excluded_packages = EXCLUDED_PACKAGES if exclude is None else frozenset()
    closure = _Closure(packages, excluded, excluded_packages, run_module)
    mod = closure.module(run_module)
    if mod is None:
        raise FingerprintError(f"cannot find the source file of the run module {run_module!r}; a fingerprint "
                               "needs a module-level run function defined in a .py file")
    closure.push("touch", run_module)
    if entry is not None and entry in mod.units:
        closure.push("unit", run_module, entry)
        if mod.entry_needs_classes(entry):
            for cls in mod.classes:
                closure.push("unit", run_module, cls)
    else:
        closure.push("whole", run_module)
    closure.run()
    return closure


def dependencies(run_module: str, entry: str | None = "run", *, packages: Iterable[str] | None = None,
                 exclude: Iterable[str] | None = None) -> dict[str, Path]:
    """``{module: file}`` of the modules with a unit that ``run_module.entry`` reaches (see the module
    docstring; ``entry=None``: every unit of the run module), sorted by name. :data:`EXCLUDED_MODULES` and
    :data:`EXCLUDED_PACKAGES` are left out and not followed (``exclude`` replaces both).

    Raises:
        FingerprintError: the run module's source file cannot be found.
    """
    closure = _closure(run_module, entry, packages, exclude)
    names = {unit_module(k) for k in closure.units} | {run_module}
    return {n: closure.files[n] for n in sorted(names) if n in closure.files}


# ------------------------------------------------------------------------------------------------------------
# fingerprints
# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CodeFingerprint:
    """The code a run depends on: ``units`` = {``module:name``: hash}, ``fingerprint`` = hash of them all;
    ``entry`` is the run function's name in ``run_module``."""

    run_module: str
    units: Mapping[str, str]
    fingerprint: str
    entry: str = "run"
    files: Mapping[str, Path] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, run_module: str, units: Mapping[str, str], entry: str = "run",
           files: Mapping[str, Path] | None = None) -> "CodeFingerprint":
        units = dict(sorted(units.items()))
        return cls(run_module, units, _overall(units), entry, dict(files or {}))

    @property
    def modules(self) -> dict[str, str]:
        """{module: combined hash of its units} (:func:`module_units`)."""
        return {m: module_units(self.units, m) for m in sorted({unit_module(k) for k in self.units})}

    def to_record(self) -> dict[str, Any]:
        """What is stored as ``provenance.code`` (units grouped by module: ``{module: {name: hash}}``)."""
        nested: dict[str, dict[str, str]] = {}
        for key, digest in self.units.items():
            module, _, name = key.partition(":")
            nested.setdefault(module, {})[name] = digest
        return {"format": FORMAT, "run_module": self.run_module, "entry": self.entry,
                "fingerprint": self.fingerprint, "units": nested}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "CodeFingerprint":
        units = {f"{module}:{name}": digest for module, names in record["units"].items()
                 for name, digest in names.items()}
        return cls(str(record["run_module"]), units, str(record["fingerprint"]), str(record.get("entry") or "run"))


def code_fingerprint(run_module: str, entry: str | None = "run", *, packages: Iterable[str] | None = None,
                     exclude: Iterable[str] | None = None) -> CodeFingerprint:
    """The fingerprint of the current code (the files on disk) of ``run_module.entry`` and what it reaches."""
    closure = _closure(run_module, entry, packages, exclude)
    return CodeFingerprint.of(run_module, closure.units, entry or "", closure.files)


def entry_of(fn: Any) -> tuple[str | None, str | None]:
    """``(module, name)`` of the run function ``fn`` (a ``functools.partial`` is unwrapped); the module is None
    for a function of a notebook or of a script run as ``__main__`` (no name under which later code could be
    found), the name None for a nested function or a lambda (the whole module then counts)."""
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", "") or ""
    name = qualname if qualname.isidentifier() else None
    if not module:
        return None, name
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        return (getattr(spec, "name", None) or None), name  # python -m package.module has a name
    return module, name


def run_module_of(fn: Any) -> str | None:
    """The module that defines the function ``fn`` (see :func:`entry_of`)."""
    return entry_of(fn)[0]


def code_record(run_module: str | None, entry: str | None = "run", *, warn: bool = True) -> dict[str, Any] | None:
    """``provenance.code`` for a run of ``run_module.entry`` computed now; None (with a warning) when it cannot be
    computed, so that a finished run is always saved."""
    if run_module is None:
        return None
    try:
        return code_fingerprint(run_module, entry).to_record()
    except Exception as err:  # noqa: BLE001 - never lose a result over its fingerprint
        if warn:
            import warnings

            warnings.warn(f"no code fingerprint stored for this run ({type(err).__name__}: {err}); it will show as "
                          "of unknown code", stacklevel=2)
        return None


# ------------------------------------------------------------------------------------------------------------
# backfill from git
# ------------------------------------------------------------------------------------------------------------
def _git(folder: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=text, timeout=30,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None


@lru_cache(maxsize=64)
def _toplevel(folder: str) -> Path | None:
    out = _git(Path(folder), "rev-parse", "--show-toplevel")
    return Path(out.stdout.strip()) if out is not None and out.returncode == 0 else None


@lru_cache(maxsize=256)
def _has_commit(top: str, commit: str) -> bool:
    out = _git(Path(top), "cat-file", "-e", f"{commit}^{{commit}}")
    return out is not None and out.returncode == 0


@lru_cache(maxsize=4096)
def _module_at(top: str, commit: str, name: str, relpaths: tuple[str, ...]) -> dict[str, str] | None:
    """The unit hashes of module ``name`` at ``commit`` (the first of ``relpaths`` that exists there), or None
    when none does; ``{TOPLEVEL: "unparsable"}`` for a file that is not valid Python."""
    for rel in relpaths:
        out = _git(Path(top), "show", f"{commit}:{rel}", text=False)
        if out is not None and out.returncode == 0:
            try:
                return dict(_Module(name, out.stdout, rel.endswith("__init__.py"), f"{commit[:10]}:{rel}").digests)
            except SyntaxError:
                return {TOPLEVEL: "unparsable"}
    return None


def fingerprint_at_commit(run_module: str, commit: str, entry: str | None = "run", *,
                          packages: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                          now: CodeFingerprint | None = None) -> CodeFingerprint:
    """The fingerprint of ``run_module.entry``'s code at git ``commit``: the units it reaches *now* (``now``, or
    the current code's), each hashed as it was at that commit (:data:`ABSENT` where it did not exist).

    When every unit hashes the same at the commit as now, the units reached at the commit were the same too
    (names are followed from those very units), so comparing with :func:`code_fingerprint` is exact except
    where a lazy export was resolved by importing the current code.

    Raises:
        FingerprintError: no git repository holds the run module, or it does not have ``commit``.
    """
    if now is None or not now.files:
        now = code_fingerprint(run_module, entry, packages=packages, exclude=exclude)
    files = now.files
    top = _toplevel(str(files[run_module].parent))
    if top is None:
        raise FingerprintError(f"{files[run_module]} is not in a git repository")
    if not _has_commit(str(top), commit):
        raise FingerprintError(f"commit {commit[:12]} is not in the repository {top}")
    units = {}
    for key in now.units:
        name, _, unit = key.partition(":")
        path = files[name]
        try:
            rel = path.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise FingerprintError(f"{path} is outside the git repository {top}") from None
        alt = (rel[: -len("/__init__.py")] + ".py" if rel.endswith("/__init__.py")
               else rel[: -len(".py")] + "/__init__.py")
        then = _module_at(str(top), commit, name, (rel, alt))
        units[key] = (then or {}).get(unit, ABSENT)
    return CodeFingerprint.of(run_module, units, now.entry, files)


# ------------------------------------------------------------------------------------------------------------
# checking stored records
# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CodeState:
    """Whether a stored run's code is the current code.

    ``state``: ``"current"``, ``"stale"`` or ``"unknown"``; ``changed``: for stale runs, the units whose code
    differs (``module:name``; ``"+key"`` a unit the run did not reach, ``"-key"`` one it no longer reaches);
    ``reason``: why the code is unknown; ``backfilled``: the stored fingerprint was computed from git;
    ``declared``: the declarations (:mod:`~specvae.experiments.code_equivalence`) that make a changed run
    current, ``excused`` the changes they cover.
    """

    state: str
    changed: tuple[str, ...] = ()
    reason: str = ""
    backfilled: bool = False
    declared: tuple[str, ...] = ()
    excused: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        return self.state == "current"


def _compare(stored: Mapping[str, str], now: Mapping[str, str]) -> tuple[str, ...]:
    out = []
    for name in sorted(set(stored) | set(now)):
        old, new = stored.get(name, _ABSENT), now.get(name, _ABSENT)
        if old == new:
            continue
        if old == _ABSENT:
            out.append(f"+{name}")
        elif new == _ABSENT:
            out.append(f"-{name}")
        else:
            out.append(name)
    return tuple(out)


def chapter_module(chapter: str | None) -> str | None:
    """``specvae.experiments.<slug>`` for a chapter ``NN_slug`` (the naming of :class:`specvae.book.Chapter`),
    or None when ``chapter`` is not so named."""
    if not chapter or len(chapter) < 4 or not chapter[:2].isdigit() or chapter[2] != "_":
        return None
    return f"specvae.experiments.{chapter[3:]}"


def _declarations(declarations: Any) -> Any:
    from specvae.experiments import code_equivalence

    return code_equivalence.load() if declarations is None else declarations


def _verdict(record: Mapping[str, Any], stored: Mapping[str, str], now: Mapping[str, str], declarations: Any,
             backfilled: bool) -> CodeState:
    changed = _compare(stored, now)
    if not changed:
        return CodeState("current", backfilled=backfilled)
    prov = record.get("provenance") or {}
    left, used = _declarations(declarations).excuse(record.get("chapter"), prov.get("preset"), stored, now,
                                                    changed)
    if not left:
        return CodeState("current", backfilled=backfilled, declared=used, excused=changed)
    return CodeState("stale", left, backfilled=backfilled)


def check_record(record: Mapping[str, Any], *, current: dict[Any, CodeFingerprint] | None = None,
                 run_module: str | None = None, declarations: Any = None) -> CodeState:
    """Compare a stored result record with the current code (see the module docstring).

    ``current`` is an optional cache ``{(run module, entry): CodeFingerprint}`` shared between calls;
    ``run_module`` is the run module of a record without a fingerprint (default: its chapter's module,
    :func:`chapter_module`; its function ``run``); ``declarations``: the declared equivalences
    (:func:`specvae.experiments.code_equivalence.load`; default: the file in the results root).
    """
    cache: dict[Any, CodeFingerprint] = current if current is not None else {}
    prov = record.get("provenance") or {}
    code = prov.get("code")

    def now(module: str, entry: str) -> CodeFingerprint:
        if (module, entry) not in cache:
            cache[(module, entry)] = code_fingerprint(module, entry)
        return cache[(module, entry)]

    if isinstance(code, Mapping) and code.get("run_module"):
        if code.get("format") != FORMAT or not isinstance(code.get("units"), Mapping):
            return CodeState("unknown", reason=f"fingerprint of another layout (format {code.get('format')})")
        stored = CodeFingerprint.from_record(code)
        try:
            fresh = now(stored.run_module, stored.entry)
        except FingerprintError as err:
            return CodeState("unknown", reason=str(err))
        if fresh.fingerprint == stored.fingerprint:
            return CodeState("current")
        return _verdict(record, stored.units, fresh.units, declarations, backfilled=False)

    # backfill: a record from before fingerprints
    commit, dirty = prov.get("git_commit"), prov.get("git_dirty")
    if not commit:
        return CodeState("unknown", reason="no fingerprint and no git commit recorded")
    if dirty is not False:
        why = "uncommitted changes" if dirty else "unknown git state"
        return CodeState("unknown", reason=f"made with {why} at {commit[:8]}")
    module = run_module or chapter_module(record.get("chapter"))
    if module is None:
        return CodeState("unknown", reason="no fingerprint, and no chapter module to backfill it from")
    try:
        fresh = now(module, "run")
        key = ("at", module, "run", commit)
        if key not in cache:
            cache[key] = fingerprint_at_commit(module, commit, "run", now=fresh)
        then = cache[key]
    except FingerprintError as err:
        return CodeState("unknown", reason=str(err))
    if then.fingerprint == fresh.fingerprint:
        return CodeState("current", backfilled=True)
    return _verdict(record, then.units, fresh.units, declarations, backfilled=True)


@dataclasses.dataclass
class CodeSummary:
    """The code states of a set of runs: ``states`` = {run id (config hash): CodeState}; ``missing``: runs asked
    for that have no stored result; ``problems``: declarations that were refused."""

    states: dict[str, CodeState] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    presets: dict[str, Any] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    def ids(self, state: str) -> list[str]:
        return [k for k, v in self.states.items() if v.state == state]

    @property
    def ok(self) -> bool:
        """Every stored run is current."""
        return all(s.current for s in self.states.values())

    def _counted(self, field: str) -> list[str]:
        counts: dict[str, int] = {}
        for state in self.states.values():
            for name in getattr(state, field):
                counts[name] = counts.get(name, 0) + 1
        # the most frequent first; edited definitions before appeared (+) and gone (-) ones
        return sorted(counts, key=lambda n: (-counts[n], n[:1] in "+-", n.lstrip("+-"), n))

    def changed_units(self) -> list[str]:
        """Units (``module:name``, ``+``/``-`` for appeared/gone) changed since some stale run, the most
        frequent first."""
        return self._counted("changed")

    def changed_modules(self) -> list[str]:
        """Modules with a unit changed since some stale run, the most frequent first."""
        return list(dict.fromkeys(unit_module(u) for u in self.changed_units()))

    def declared(self) -> list[str]:
        """Labels of the declarations that make some changed run current."""
        return self._counted("declared")

    def unknown_reasons(self) -> list[str]:
        counts: dict[str, int] = {}
        for state in self.states.values():
            if state.state == "unknown":
                key = state.reason.split(" at ")[0]
                counts[key] = counts.get(key, 0) + 1
        return sorted(counts, key=lambda n: (-counts[n], n))

    def rerun_presets(self) -> list[Any]:
        """The presets of the stale and unknown runs (to say which ``specvae run --preset`` retrains them)."""
        return sorted({self.presets.get(k) for k, v in self.states.items() if not v.current} - {None}, key=str)

    def line(self) -> str:
        """One short line, e.g. ``3 current (2 by declared equivalence), 4 stale, 1 unknown (made with uncommitted
        changes)``; the changed units are :meth:`changed_units`."""
        declared = sum(1 for s in self.states.values() if s.current and s.declared)
        parts = [f"{len(self.ids('current'))} current" + (f" ({declared} by declared equivalence)" if declared
                                                           else ""),
                 f"{len(self.ids('stale'))} stale"]
        unknown = self.ids("unknown")
        parts.append(f"{len(unknown)} unknown" + (f" ({'; '.join(self.unknown_reasons()[:2])})" if unknown else ""))
        if self.missing:
            parts.append(f"{len(self.missing)} not stored")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"total": len(self.states), "current": len(self.ids("current")), "stale": len(self.ids("stale")),
                "unknown": len(self.ids("unknown")), "missing": len(self.missing),
                "declared": sum(1 for s in self.states.values() if s.current and s.declared),
                "declarations": self.declared(), "changed": self.changed_modules(),
                "changed_units": self.changed_units(), "unknown_reasons": self.unknown_reasons(),
                "line": self.line()}


def check_records(records: Iterable[Mapping[str, Any]], *, missing: Iterable[str] = (),
                  declarations: Any = None) -> CodeSummary:
    """:func:`check_record` of each record (keyed by its ``hash``), with one current-code cache for all;
    ``declarations`` as in :func:`check_record` (loaded once)."""
    cache: dict[Any, CodeFingerprint] = {}
    declarations = _declarations(declarations)
    summary = CodeSummary(missing=list(missing), problems=list(declarations.problems))
    for record in records:
        key = str(record.get("hash"))
        summary.states[key] = check_record(record, current=cache, declarations=declarations)
        summary.presets[key] = (record.get("provenance") or {}).get("preset")
    return summary


# ------------------------------------------------------------------------------------------------------------
# the switch used by `specvae run`
# ------------------------------------------------------------------------------------------------------------
class CodeTracker:
    """Counts the code state of every record :meth:`ResultStore.load` returns while it is active.

    With ``rerun_stale`` a stale or unknown record is reported as absent, so ``run_all`` / ``run_grid`` retrain
    it. ``reused()`` are the stale/unknown runs that were used anyway; ``rerun()`` those retrained since.
    Declared equivalences are read from ``code_equivalence.json`` in the results root of each record's store.
    """

    def __init__(self, rerun_stale: bool = False) -> None:
        self.rerun_stale = rerun_stale
        self.first: dict[str, CodeState] = {}
        self.last: dict[str, CodeState] = {}
        self.retrained: list[str] = []
        self._cache: dict[Any, CodeFingerprint] = {}

    def observe(self, path: Path, record: Mapping[str, Any]) -> bool:
        """Record ``record``'s state; return whether the caller may use it."""
        from specvae.experiments import code_equivalence

        key = str(path)
        declarations = code_equivalence.load(Path(path).parent.parent / code_equivalence.FILE_NAME)
        state = check_record(record, current=self._cache, declarations=declarations)
        self.first.setdefault(key, state)
        self.last[key] = state
        return state.current or not self.rerun_stale

    def wants_rerun(self, path: Path) -> bool:
        """Whether the run stored at ``path`` was refused as stale/unknown and is to be retrained."""
        state = self.last.get(str(path))
        return self.rerun_stale and state is not None and not state.current

    def note_rerun(self, path: Path) -> None:
        """``run_grid`` retrained and saved the run stored at ``path`` (with the current code)."""
        key = str(path)
        self.retrained.append(key)
        self.last[key] = CodeState("current")

    def reused(self) -> CodeSummary:
        """The runs last seen stale or unknown (used as they were unless ``rerun_stale``)."""
        return CodeSummary({Path(k).stem: v for k, v in self.last.items() if not v.current})

    def rerun(self) -> list[str]:
        """The runs retrained because their code was stale or unknown (config hashes)."""
        return [Path(k).stem for k in dict.fromkeys(self.retrained)]


_TRACKER: contextvars.ContextVar[CodeTracker | None] = contextvars.ContextVar("specvae_code_tracker", default=None)


def active_tracker() -> CodeTracker | None:
    """The :class:`CodeTracker` of the innermost :func:`track_code` block, if any."""
    return _TRACKER.get()


@contextlib.contextmanager
def track_code(*, rerun_stale: bool = False) -> Iterator[CodeTracker]:
    """Check every stored result loaded inside the block (see :class:`CodeTracker`)."""
    tracker = CodeTracker(rerun_stale)
    token = _TRACKER.set(tracker)
    try:
        yield tracker
    finally:
        _TRACKER.reset(token)


def prepare_rerun_dir(run_dir: Path, code: Mapping[str, Any] | None) -> bool:
    """Make ``run_dir`` safe for retraining a stale run: remove it (the old code's checkpoints, which ``fit``
    would resume from) unless its marker says it holds a checkpoint of the current code (a rerun that was
    killed, which then resumes); leave a marker with ``code``'s fingerprint. Returns whether it removed one."""
    import shutil

    run_dir = Path(run_dir)
    marker = run_dir / RUN_DIR_MARKER
    fingerprint = (code or {}).get("fingerprint")
    removed = False
    if run_dir.exists():
        try:
            kept = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            kept = None
        if fingerprint is None or kept != fingerprint:
            shutil.rmtree(run_dir)
            removed = True
    if fingerprint is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fingerprint}) + "\n", encoding="utf-8")
    return removed
