"""Code fingerprints: which code a stored run was computed with, and whether that code has changed since.

A result is keyed by the hash of its config (:mod:`~specvae.experiments.hashing`), which says nothing about the
code: after a loss or the training loop changes, an old result would be reused without a word. So every result
also records the fingerprint of the code it depends on, in its provenance::

    "code": {"format": 1, "run_module": "specvae.experiments.simpler_is_better",
             "fingerprint": "3f0c…" (16 hex digits),
             "modules": {"specvae.experiments.simpler_is_better": "ab12…", "specvae.train": "9e41…", ...}}

What is covered
---------------
The *run module* (the module that defines the chapter's ``run`` function) and the transitive closure of the
``specvae`` modules it imports, found by reading their code with :mod:`ast`: module-level and function-local
``import`` / ``from … import`` statements and ``importlib.import_module("literal")`` calls (imports inside
``if TYPE_CHECKING:`` are skipped: they cannot change a number). ``from specvae.pkg import Name`` counts the
module that *defines* ``Name`` (``Name.__module__`` for a class or function, ``specvae.pkg.Name`` when ``Name`` is
a submodule, the module that binds it for a constant), so a package ``__init__`` that re-exports its siblings
does not drag them all in. ``import specvae.pkg`` counts the package's ``__init__`` (and so what it imports).

Left out (:data:`EXCLUDED_MODULES`): bookkeeping that cannot change a number — the results store, the grid
runner, config hashing, presets, provenance, atomic writes, this module, the ``specvae.experiments`` package
``__init__`` (re-exports of those), ``specvae.book``, ``specvae.cli``, ``specvae.plots``, ``specvae.paths``,
``specvae.gpu`` (staging for a GPU machine) and the top-level ``specvae`` package (its version string); and
(:data:`EXCLUDED_PACKAGES`) the throughput benchmarks ``specvae.bench.*``, which a chapter module imports in its
``bench_families`` but no run uses. Third-party code is not fingerprinted: its
versions (torch, NumPy, Python) are in the provenance already.

Each module is hashed by its *code*, not its text (:func:`code_hash`): the AST with every docstring and bare
string statement removed, serialised without line numbers. Comments, docstrings and formatting edits leave the
fingerprint unchanged; any change of code (a constant, an operator, an import) changes it.

Checking a stored run
---------------------
:func:`check_record` compares a stored record with the current code of the checkout: ``"current"`` (same
fingerprint), ``"stale"`` (the modules that changed, appeared or disappeared are named) or ``"unknown"``.
A record stored before fingerprints existed is *backfilled* from git: when its provenance says
``git_dirty: false`` and the repository has its ``git_commit``, the modules the run module depends on now are
hashed as they were at that commit (``git show <commit>:<path>``) and compared module by module; otherwise
(uncommitted changes, no commit, commit not in the repository) the run's code is ``"unknown"`` — never shown as
current.

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
    "fingerprint_at_commit",
    "prepare_rerun_dir",
    "run_module_of",
    "track_code",
]

#: layout version of ``provenance.code`` (and of the serialisation hashed by :func:`code_hash`)
FORMAT = 1

#: top-level packages whose modules are followed and fingerprinted (a test may add its own package)
PACKAGES: tuple[str, ...] = ("specvae",)

#: modules that cannot change a number; neither hashed nor followed (see the module docstring)
EXCLUDED_MODULES: frozenset[str] = frozenset({
    "specvae",                          # the package __init__: a version string and a docstring
    "specvae.experiments",              # re-exports of the bookkeeping modules below
    "specvae.experiments.store",        # results store
    "specvae.experiments.grid",         # grid runner
    "specvae.experiments.hashing",      # config hashes
    "specvae.experiments.presets",      # preset lookup (its output is part of the hashed config)
    "specvae.experiments.provenance",   # git commit, versions, device
    "specvae.experiments.atomic",       # atomic writes
    "specvae.experiments.fingerprint",  # this module
    "specvae.book",                     # notebook execution and the book build
    "specvae.cli",                      # the command line
    "specvae.plots",                    # figures
    "specvae.paths",                    # where files live
    "specvae.gpu",                      # staging a grid for a GPU machine and unpacking its results
})

#: packages left out with every module in them: throughput benchmarks (a chapter's ``bench_families`` imports
#: them inside the chapter module, but no run does)
EXCLUDED_PACKAGES: frozenset[str] = frozenset({"specvae.bench"})

#: name of the file :func:`prepare_rerun_dir` leaves in a run's checkpoint folder
RUN_DIR_MARKER = "code_fingerprint.json"

_HASH_LENGTH = 16
_ABSENT = "absent"


class FingerprintError(RuntimeError):
    """The code of a run module cannot be found or read."""


# ------------------------------------------------------------------------------------------------------------
# hashing one module's code
# ------------------------------------------------------------------------------------------------------------
def _is_string_statement(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def _strip_strings(tree: ast.AST) -> ast.AST:
    """Remove docstrings and every other bare string statement (no-ops) from every statement list."""
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                setattr(node, name, [s for s in value if not _is_string_statement(s)])
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


def code_hash(source: str | bytes, where: str = "<source>") -> str:
    """16-hex-digit hash of the *code* of a module: docstrings, comments and layout do not count.

    Raises:
        SyntaxError: ``source`` is not valid Python (the message names ``where``).
    """
    tree = _strip_strings(ast.parse(source, filename=where))
    text = f"specvae-code-v{FORMAT}\n{_serialise(tree)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def _overall(modules: Mapping[str, str]) -> str:
    text = "\n".join(f"{name} {digest}" for name, digest in sorted(modules.items()))
    return hashlib.sha256(f"specvae-fingerprint-v{FORMAT}\n{text}".encode("utf-8")).hexdigest()[:_HASH_LENGTH]


# ------------------------------------------------------------------------------------------------------------
# finding modules and their imports
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
    return _module_file(name) is not None


@dataclasses.dataclass(frozen=True)
class _Ref:
    """One import found in a module: ``module`` (absolute) and, for ``from module import name``, the name."""

    module: str
    name: str | None = None


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = here if is_package else here.rpartition(".")[0]
    for _ in range(level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{module}" if module else base


def _import_refs(tree: ast.AST, here: str, is_package: bool) -> list[_Ref]:
    """Every import of a module (anywhere in it, also inside functions), as absolute references."""
    refs: list[_Ref] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            refs.extend(_Ref(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level, here, is_package)
            refs.extend(_Ref(module, None if alias.name == "*" else alias.name) for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id == "import_module"))):
            refs.append(_Ref(node.args[0].value))
        stack.extend(ast.iter_child_nodes(node))
    return refs


@dataclasses.dataclass
class _Parsed:
    digest: str
    tree: ast.Module
    refs: list[_Ref]


_PARSE_CACHE: dict[tuple[str, str, bool, str], _Parsed] = {}


def _parse(name: str, path: Path, is_package: bool) -> _Parsed:
    """Hash and imports of a module file (cached by its content: reading is cheap, parsing less so)."""
    source = path.read_bytes()
    key = (name, str(path), is_package, hashlib.sha1(source).hexdigest())
    cached = _PARSE_CACHE.get(key)
    if cached is None:
        tree = ast.parse(source, filename=str(path))
        cached = _Parsed(code_hash(source, str(path)), tree, _import_refs(tree, name, is_package))
        _PARSE_CACHE[key] = cached
    return cached


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements executed at import time (also inside module-level if/try/with blocks)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try, ast.With)) or type(stmt).__name__ == "TryStar":
            for field in ("body", "orelse", "finalbody"):
                yield from _module_level(getattr(stmt, field, []) or [])
            for handler in getattr(stmt, "handlers", []) or []:
                yield from _module_level(handler.body)


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _static_binding(module: str, name: str, packages: tuple[str, ...], depth: int = 0) -> str | None:
    """The module that defines ``name`` as bound in ``module``'s code (following ``from x import name``
    re-exports); ``module`` itself when it binds the name or when the binding cannot be found; None when the
    name comes from outside ``packages``."""
    info = _module_file(module)
    if info is None or depth > 20:
        return module
    tree = _parse(module, *info).tree
    found: tuple[str, ...] | None = None
    for stmt in _module_level(tree.body):
        if isinstance(stmt, ast.ImportFrom):
            source = _absolute(stmt.module, stmt.level, module, info[1])
            for alias in stmt.names:
                if (alias.asname or alias.name) == name:
                    found = ("from", source, alias.name)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname == name:
                    found = ("module", alias.name)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name == name:
            found = ("here",)
        elif isinstance(stmt, ast.Assign) and any(name in _targets(t) for t in stmt.targets):
            found = ("here",)
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and name in _targets(stmt.target):
            found = ("here",)
    if found is None or found[0] == "here":
        return module
    if found[0] == "module":
        return found[1] if _followed(found[1], packages) else None
    _, source, original = found
    if not _followed(source, packages):
        return None
    if _is_module(f"{source}.{original}"):
        return f"{source}.{original}"
    return _static_binding(source, original, packages, depth + 1)


_RESOLVED: dict[tuple[str, str, tuple[str, ...]], str | None] = {}


def clear_caches() -> None:
    """Forget parsed modules and resolved names (for tests that rewrite a package's imports)."""
    _PARSE_CACHE.clear()
    _RESOLVED.clear()
    _hash_at.cache_clear()
    _has_commit.cache_clear()
    _toplevel.cache_clear()


def _resolve_name(module: str, name: str, packages: tuple[str, ...]) -> str | None:
    """The module that ``from module import name`` depends on (None: defined outside ``packages``).

    A submodule is itself; a class or function is its ``__module__`` (the package is imported to ask);
    anything else (a constant, an instance) is found by :func:`_static_binding`.
    """
    key = (module, name, packages)
    if key in _RESOLVED:
        return _RESOLVED[key]
    target: str | None
    if _is_module(f"{module}.{name}"):
        target = f"{module}.{name}"
    else:
        try:
            obj = getattr(importlib.import_module(module), name)
        except Exception:  # noqa: BLE001 - a broken or half-edited module: fall back on reading its code
            obj = None
            target = _static_binding(module, name, packages)
        else:
            if isinstance(obj, types.ModuleType):
                target = obj.__name__
            elif isinstance(obj, type) or inspect.isroutine(obj) or hasattr(obj, "__wrapped__"):
                owner = getattr(obj, "__module__", None) or module
                target = owner if _followed(owner, packages) else None
            else:
                target = _static_binding(module, name, packages)
    if target is not None and not _followed(target, packages):
        target = None
    _RESOLVED[key] = target
    return target


def _targets_of(ref: _Ref, packages: tuple[str, ...]) -> list[str]:
    if not _followed(ref.module, packages):
        return []
    if ref.name is None:
        return [ref.module]
    target = _resolve_name(ref.module, ref.name, packages)
    return [target] if target is not None else []


def dependencies(run_module: str, *, packages: Iterable[str] | None = None,
                 exclude: Iterable[str] | None = None) -> dict[str, Path]:
    """``{module: file}`` of ``run_module`` and every module of ``packages`` it imports, directly or not
    (:data:`EXCLUDED_MODULES` and :data:`EXCLUDED_PACKAGES` left out and not followed, or ``exclude`` instead of
    both), sorted by name.

    Raises:
        FingerprintError: the run module's source file cannot be found.
    """
    packages = tuple(packages if packages is not None else PACKAGES)
    excluded = frozenset(exclude if exclude is not None else EXCLUDED_MODULES)
    excluded_packages = EXCLUDED_PACKAGES if exclude is None else frozenset()

    def left_out(name: str) -> bool:
        if name == run_module:
            return False
        return name in excluded or any(name == p or name.startswith(p + ".") for p in excluded_packages)

    info = _module_file(run_module)
    if info is None:
        raise FingerprintError(f"cannot find the source file of the run module {run_module!r}; a fingerprint "
                               "needs a module-level run function defined in a .py file")
    found: dict[str, Path] = {}
    todo = [run_module]
    while todo:
        name = todo.pop()
        if name in found or left_out(name):
            continue
        info = _module_file(name)
        if info is None:
            continue  # e.g. an optional module imported inside try/except that does not exist
        found[name] = info[0]
        for ref in _parse(name, *info).refs:
            todo.extend(t for t in _targets_of(ref, packages) if t not in found)
    return dict(sorted(found.items()))


# ------------------------------------------------------------------------------------------------------------
# fingerprints
# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CodeFingerprint:
    """The code a run depends on: ``modules`` = {module: :func:`code_hash`}, ``fingerprint`` = hash of them."""

    run_module: str
    modules: Mapping[str, str]
    fingerprint: str

    @classmethod
    def of(cls, run_module: str, modules: Mapping[str, str]) -> "CodeFingerprint":
        modules = dict(sorted(modules.items()))
        return cls(run_module, modules, _overall(modules))

    def to_record(self) -> dict[str, Any]:
        """What is stored as ``provenance.code``."""
        return {"format": FORMAT, "run_module": self.run_module, "fingerprint": self.fingerprint,
                "modules": dict(self.modules)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "CodeFingerprint":
        return cls(str(record["run_module"]), dict(record["modules"]), str(record["fingerprint"]))


def code_fingerprint(run_module: str, *, packages: Iterable[str] | None = None,
                     exclude: Iterable[str] | None = None) -> CodeFingerprint:
    """The fingerprint of the current code (the files on disk) of ``run_module`` and its dependencies."""
    packages = tuple(packages if packages is not None else PACKAGES)
    files = dependencies(run_module, packages=packages, exclude=exclude)
    modules = {}
    for name, path in files.items():
        modules[name] = _parse(name, path, path.name == "__init__.py").digest
    return CodeFingerprint.of(run_module, modules)


def run_module_of(fn: Any) -> str | None:
    """The module that defines the function ``fn`` (a ``functools.partial`` is unwrapped); None for a function
    of a notebook or of a script run as ``__main__`` (no name under which later code could be found)."""
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    if not module:
        return None
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        return getattr(spec, "name", None) or None  # python -m package.module has a name
    return module


def code_record(run_module: str | None, *, warn: bool = True) -> dict[str, Any] | None:
    """``provenance.code`` for a run of ``run_module`` computed now; None (with a warning) when it cannot be
    computed, so that a finished run is always saved."""
    if run_module is None:
        return None
    try:
        return code_fingerprint(run_module).to_record()
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
def _hash_at(top: str, commit: str, relpaths: tuple[str, ...]) -> str:
    """:func:`code_hash` of the first of ``relpaths`` that exists at ``commit`` (``"absent"`` if none does)."""
    for rel in relpaths:
        out = _git(Path(top), "show", f"{commit}:{rel}", text=False)
        if out is not None and out.returncode == 0:
            try:
                return code_hash(out.stdout, f"{commit[:10]}:{rel}")
            except SyntaxError:
                return "unparsable"
    return _ABSENT


def fingerprint_at_commit(run_module: str, commit: str, *, packages: Iterable[str] | None = None,
                          exclude: Iterable[str] | None = None) -> CodeFingerprint:
    """The fingerprint of ``run_module``'s code at git ``commit``: the modules it depends on *now* (the current
    closure), each hashed as it was at that commit (``"absent"`` where it did not exist).

    When every module hashes the same at the commit as now, the closure at the commit was the same too (it is
    read from those very modules), so comparing with :func:`code_fingerprint` is exact except when a package
    ``__init__`` outside the closure re-pointed a re-exported name to another module.

    Raises:
        FingerprintError: no git repository holds the run module, or it does not have ``commit``.
    """
    files = dependencies(run_module, packages=packages, exclude=exclude)
    top = _toplevel(str(files[run_module].parent))
    if top is None:
        raise FingerprintError(f"{files[run_module]} is not in a git repository")
    if not _has_commit(str(top), commit):
        raise FingerprintError(f"commit {commit[:12]} is not in the repository {top}")
    modules = {}
    for name, path in files.items():
        try:
            rel = path.resolve().relative_to(top.resolve()).as_posix()
        except ValueError:
            raise FingerprintError(f"{path} is outside the git repository {top}") from None
        alt = (rel[: -len("/__init__.py")] + ".py" if rel.endswith("/__init__.py")
               else rel[: -len(".py")] + "/__init__.py")
        modules[name] = _hash_at(str(top), commit, (rel, alt))
    return CodeFingerprint.of(run_module, modules)


# ------------------------------------------------------------------------------------------------------------
# checking stored records
# ------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CodeState:
    """Whether a stored run's code is the current code.

    ``state``: ``"current"``, ``"stale"`` or ``"unknown"``; ``changed``: for stale runs, the modules whose code
    differs (``"+name"`` a module the run did not depend on, ``"-name"`` one it no longer depends on);
    ``reason``: why the code is unknown; ``backfilled``: the stored fingerprint was computed from git.
    """

    state: str
    changed: tuple[str, ...] = ()
    reason: str = ""
    backfilled: bool = False

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


def module_exists(name: str) -> bool:
    """Whether module ``name`` has a ``.py`` source file (found without importing it)."""
    return _module_file(name) is not None


def check_record(record: Mapping[str, Any], *, current: Mapping[str, CodeFingerprint] | None = None,
                 run_module: str | None = None) -> CodeState:
    """Compare a stored result record with the current code (see the module docstring).

    ``current`` is an optional cache ``{run module: CodeFingerprint}`` shared between calls; ``run_module`` is the
    run module of a record without a fingerprint (default: its chapter's module, :func:`chapter_module`).
    """
    cache: dict[str, Any] = current if current is not None else {}  # type: ignore[assignment]
    prov = record.get("provenance") or {}
    code = prov.get("code")

    def now(module: str) -> CodeFingerprint:
        if module not in cache:
            cache[module] = code_fingerprint(module)
        return cache[module]

    if isinstance(code, Mapping) and code.get("modules") and code.get("run_module"):
        if code.get("format") != FORMAT:
            return CodeState("unknown", reason=f"fingerprint of another layout (format {code.get('format')})")
        stored = CodeFingerprint.from_record(code)
        try:
            fresh = now(stored.run_module)
        except FingerprintError as err:
            return CodeState("unknown", reason=str(err))
        if fresh.fingerprint == stored.fingerprint:
            return CodeState("current")
        return CodeState("stale", _compare(stored.modules, fresh.modules))

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
        fresh = now(module)
        then = fingerprint_at_commit(module, commit)
    except FingerprintError as err:
        return CodeState("unknown", reason=str(err))
    if then.fingerprint == fresh.fingerprint:
        return CodeState("current", backfilled=True)
    return CodeState("stale", _compare(then.modules, fresh.modules), backfilled=True)


@dataclasses.dataclass
class CodeSummary:
    """The code states of a set of runs: ``states`` = {run id (config hash): CodeState}; ``missing``: runs asked
    for that have no stored result."""

    states: dict[str, CodeState] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    presets: dict[str, Any] = dataclasses.field(default_factory=dict)

    def ids(self, state: str) -> list[str]:
        return [k for k, v in self.states.items() if v.state == state]

    @property
    def ok(self) -> bool:
        """Every stored run is current."""
        return all(s.current for s in self.states.values())

    def changed_modules(self) -> list[str]:
        """Modules changed since some stale run, the most frequent first."""
        counts: dict[str, int] = {}
        for state in self.states.values():
            for name in state.changed:
                counts[name] = counts.get(name, 0) + 1
        return sorted(counts, key=lambda n: (-counts[n], n))

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
        """One short line, e.g. ``3 current, 4 stale, 1 unknown (made with uncommitted changes)``; the changed
        modules are :meth:`changed_modules`."""
        parts = [f"{len(self.ids('current'))} current", f"{len(self.ids('stale'))} stale"]
        unknown = self.ids("unknown")
        parts.append(f"{len(unknown)} unknown" + (f" ({'; '.join(self.unknown_reasons()[:2])})" if unknown else ""))
        if self.missing:
            parts.append(f"{len(self.missing)} not stored")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"total": len(self.states), "current": len(self.ids("current")), "stale": len(self.ids("stale")),
                "unknown": len(self.ids("unknown")), "missing": len(self.missing),
                "changed": self.changed_modules(), "unknown_reasons": self.unknown_reasons(),
                "line": self.line()}


def check_records(records: Iterable[Mapping[str, Any]], *, missing: Iterable[str] = ()) -> CodeSummary:
    """:func:`check_record` of each record (keyed by its ``hash``), with one current-code cache for all."""
    cache: dict[str, CodeFingerprint] = {}
    summary = CodeSummary(missing=list(missing))
    for record in records:
        key = str(record.get("hash"))
        summary.states[key] = check_record(record, current=cache)
        summary.presets[key] = (record.get("provenance") or {}).get("preset")
    return summary


# ------------------------------------------------------------------------------------------------------------
# the switch used by `specvae run`
# ------------------------------------------------------------------------------------------------------------
class CodeTracker:
    """Counts the code state of every record :meth:`ResultStore.load` returns while it is active.

    With ``rerun_stale`` a stale or unknown record is reported as absent, so ``run_all`` / ``run_grid`` retrain
    it. ``reused()`` are the stale/unknown runs that were used anyway; ``rerun()`` those retrained since.
    """

    def __init__(self, rerun_stale: bool = False) -> None:
        self.rerun_stale = rerun_stale
        self.first: dict[str, CodeState] = {}
        self.last: dict[str, CodeState] = {}
        self.retrained: list[str] = []
        self._cache: dict[str, CodeFingerprint] = {}

    def observe(self, path: Path, record: Mapping[str, Any]) -> bool:
        """Record ``record``'s state; return whether the caller may use it."""
        key = str(path)
        state = check_record(record, current=self._cache)
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
