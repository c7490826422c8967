"""Declared code equivalences: a reviewed change that leaves a chapter's numbers as they were, so its runs stay
current without retraining.

A code fingerprint (:mod:`~specvae.experiments.fingerprint`) marks a run *stale* as soon as any definition it
reaches changes, also when the change provably cannot alter the result (a branch taken only at another preset, a
refactor pinned by golden-value tests). Retraining a chapter then costs hours for nothing. Instead, a maintainer
writes a *declaration* into ``code_equivalence.json`` beside the chapters' result folders
(``book/results/code_equivalence.json``), committed and reviewed like code::

    {"format": 1,
     "declarations": [
       {"chapter": "01_simpler_is_better",
        "presets": ["cpu", "gpu", "paper"],
        "code": {"specvae.data.loaders:load_dataset": {"from": "19c4a4f00fb9fc46", "to": "344cc4969e22a4d2"},
                 "specvae.data.fallback": {"from": "absent", "to": "4a5315426214450f"}},
        "reason": "the stand-in data path acts only at preset smoke; every other preset loads as before",
        "evidence": ["tests/test_data.py::test_chapter1_real_inputs_golden_values"]}]}

``code`` keys are units ``module:name`` (hashes as in a run's ``provenance.code.units``) or whole modules (the
combined hash of the module's units among the run's, :func:`~specvae.experiments.fingerprint.module_units`);
``from`` is the hash the runs were trained with (``"absent"``: the unit did not exist or was not reached),
``to`` the hash it is equivalent to. ``presets`` (optional) limits the declaration to runs of those presets.

A declaration *matches* a run of its chapter when, for every key, the run's stored hash is ``from`` and the
current code's hash is ``to`` (so it stops matching as soon as that code changes again). The keys of every
matching declaration are not counted as changed; a run whose every change is covered is current "by declared
equivalence" (:attr:`CodeState.declared <specvae.experiments.fingerprint.CodeState>` names the declarations) and
``specvae book status`` says so. :func:`template` writes the skeleton of a declaration for a stale run.

An entry is **refused** — never honoured, and reported by ``specvae book status`` and the repository's tests —
when its reason is missing or blank, when it has no evidence, or when an evidence id is not
``tests/<file>.py::<test function>`` (``::Class::test`` and a ``[param]`` suffix allowed) naming a test that
exists in the repository's ``tests/`` folder; also for malformed hashes, ``from == to`` and unknown fields.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["FILE_NAME", "FORMAT", "Declaration", "Declarations", "default_path", "evidence_problem", "load",
           "template"]

#: the file's name, in the results root (beside the chapters' result folders)
FILE_NAME = "code_equivalence.json"
#: layout version of the file
FORMAT = 1

_FIELDS = {"chapter", "presets", "code", "reason", "evidence"}
_HASH_RE = re.compile(r"^[0-9a-f]{16}$")
_EVIDENCE_RE = re.compile(r"^(tests/[\w./-]+\.py)::([A-Za-z_]\w*)(?:::([A-Za-z_]\w*))?(\[[^\]]*\])?$")


@dataclasses.dataclass(frozen=True)
class Declaration:
    """One valid declaration: for ``chapter`` (runs of ``presets``, None: any), each key of ``code`` maps the
    stored hash to an equivalent current one: ``{key: (from, to)}``."""

    index: int
    chapter: str
    code: Mapping[str, tuple[str, str]]
    reason: str
    evidence: tuple[str, ...]
    presets: tuple[str, ...] | None = None

    def label(self) -> str:
        """``#N (first words of the reason)``: how status lines name the declaration."""
        words = self.reason.split()
        short = " ".join(words[:8]) + (" …" if len(words) > 8 else "")
        return f"#{self.index} ({short})"

    def applies(self, chapter: str | None, preset: str | None) -> bool:
        return chapter == self.chapter and (self.presets is None or preset in self.presets)

    def matches(self, stored: Mapping[str, str], now: Mapping[str, str]) -> bool:
        """Whether every key's stored hash is ``from`` and its current hash ``to``."""
        return all(_value(stored, key) == old and _value(now, key) == new for key, (old, new) in self.code.items())


@dataclasses.dataclass
class Declarations:
    """The valid ``entries`` of a declaration file and the ``problems`` of the refused ones (one line each)."""

    path: Path | None = None
    entries: list[Declaration] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)

    def excuse(self, chapter: str | None, preset: str | None, stored: Mapping[str, str], now: Mapping[str, str],
               changed: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(changes not covered, labels of the declarations used)`` for a run of ``chapter`` at ``preset``
        whose units changed as ``changed`` (keys as :func:`fingerprint._compare` gives them, ``+``/``-``
        prefixed when a unit appeared or disappeared)."""
        from specvae.experiments.fingerprint import unit_module

        left = list(changed)
        used = []
        for entry in self.entries:
            if not left or not entry.applies(chapter, preset) or not entry.matches(stored, now):
                continue
            keys = set(entry.code)
            covered = [c for c in left if c.lstrip("+-") in keys or unit_module(c) in keys]
            if covered:
                used.append(entry.label())
                left = [c for c in left if c not in covered]
        return tuple(left), tuple(used)


def _value(units: Mapping[str, str], key: str) -> str:
    """The hash of unit ``key`` (``module:name``) or of module ``key`` among ``units``."""
    from specvae.experiments.fingerprint import ABSENT, module_units

    return units.get(key, ABSENT) if ":" in key else module_units(units, key)


def default_path() -> Path:
    """``<results root>/code_equivalence.json`` (:func:`specvae.paths.results_root`)."""
    from specvae.paths import results_root

    return results_root() / FILE_NAME


def _default_tests_dir() -> Path:
    from specvae.paths import project_root

    return project_root() / "tests"


def evidence_problem(test_id: Any, tests_dir: str | os.PathLike) -> str | None:
    """Why ``test_id`` is not a test of ``tests_dir`` (``tests/<file>.py::<function>``, optionally
    ``::Class::method`` and ``[param]``), or None when the test exists."""
    if not isinstance(test_id, str):
        return f"evidence {test_id!r} is not a test id (tests/<file>.py::<test>)"
    match = _EVIDENCE_RE.match(test_id)
    if match is None:
        return f"evidence {test_id!r} is not a test id of the form tests/<file>.py::<test>"
    rel, first, second, _ = match.groups()
    tests = Path(tests_dir).resolve()
    path = (tests.parent / rel).resolve()
    if tests not in path.parents or ".." in Path(rel).parts:
        return f"evidence {test_id!r}: {rel} is not in {tests}"
    if not path.is_file():
        return f"evidence {test_id!r}: {rel} does not exist in {tests}"
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as err:
        return f"evidence {test_id!r}: {rel} does not parse ({err})"
    func = second or first
    body = tree.body
    if second is not None:
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == first]
        body = classes[0].body if classes else []
    found = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == func for n in body)
    if not found or not func.startswith("test"):
        return f"evidence {test_id!r}: no test {'::'.join(filter(None, (first, second)))} in {rel}"
    return None


def _check_entry(raw: Any, index: int, tests_dir: Path) -> tuple[Declaration | None, list[str]]:
    where = f"declaration #{index}"
    if not isinstance(raw, Mapping):
        return None, [f"{where}: not an object"]
    problems = []
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_FIELDS))})")
    chapter = raw.get("chapter")
    if not isinstance(chapter, str) or not chapter.strip():
        problems.append(f"{where}: no chapter (e.g. \"01_simpler_is_better\")")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        problems.append(f"{where}: no reason (say why the changed code computes the same numbers)")
    evidence = raw.get("evidence")
    if isinstance(evidence, str):
        evidence = [evidence]
    if not isinstance(evidence, list) or not evidence:
        problems.append(f"{where}: no evidence (the id of a test in tests/ that shows the equivalence)")
        evidence = []
    for test_id in evidence:
        problem = evidence_problem(test_id, tests_dir)
        if problem:
            problems.append(f"{where}: {problem}")
    presets = raw.get("presets")
    if presets is not None and (not isinstance(presets, list) or not presets
                                or not all(isinstance(p, str) and p for p in presets)):
        problems.append(f"{where}: presets must be a non-empty list of preset names")
    code = raw.get("code")
    pairs: dict[str, tuple[str, str]] = {}
    if not isinstance(code, Mapping) or not code:
        problems.append(f"{where}: no code (\"module:name\" or \"module\" -> {{\"from\": hash, \"to\": hash}})")
    else:
        for key, change in code.items():
            old = change.get("from") if isinstance(change, Mapping) else None
            new = change.get("to") if isinstance(change, Mapping) else None
            ok = all(isinstance(h, str) and (h == "absent" or _HASH_RE.match(h)) for h in (old, new))
            if not isinstance(key, str) or not key or not ok:
                problems.append(f"{where}: code {key!r} needs \"from\" and \"to\", each 16 hex digits or \"absent\"")
            elif old == new:
                problems.append(f"{where}: code {key!r} has from == to (nothing to declare)")
            else:
                pairs[key] = (old, new)
    if problems:
        return None, problems
    return Declaration(index, chapter.strip(), pairs, reason.strip(), tuple(evidence),
                       tuple(presets) if presets is not None else None), []


_CACHE: dict[tuple[str, int, str], Declarations] = {}


def load(path: str | os.PathLike | None = None, tests_dir: str | os.PathLike | None = None) -> Declarations:
    """The declarations in ``path`` (default :func:`default_path`); a missing file declares nothing. Entries
    with a problem are refused (left out) and listed in ``problems``. ``tests_dir``: where evidence tests live
    (default ``<project root>/tests``)."""
    path = Path(path) if path is not None else default_path()
    tests = Path(tests_dir) if tests_dir is not None else _default_tests_dir()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return Declarations(path)
    key = (str(path), stamp, str(tests))
    if key in _CACHE:
        return _CACHE[key]
    out = Declarations(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        out.problems.append(f"{path.name}: cannot be read ({err}); no declaration is honoured")
        return out
    if not isinstance(data, Mapping) or data.get("format") != FORMAT or not isinstance(data.get("declarations"),
                                                                                       list):
        out.problems.append(f"{path.name}: expected {{\"format\": {FORMAT}, \"declarations\": [...]}}; no "
                            "declaration is honoured")
        return out
    for index, raw in enumerate(data["declarations"], start=1):
        entry, problems = _check_entry(raw, index, tests)
        if entry is not None:
            out.entries.append(entry)
        out.problems += [f"{path.name}: refused {p}" for p in problems]
    _CACHE[key] = out
    return out


def template(chapter: str, stored: Mapping[str, str], now: Mapping[str, str], *,
             presets: Iterable[str] | None = None) -> dict[str, Any]:
    """The skeleton of a declaration that would cover every unit that differs between ``stored`` and ``now``
    (``reason`` and ``evidence`` left for the maintainer to fill in: until then the entry is refused)."""
    from specvae.experiments.fingerprint import ABSENT

    code = {}
    for key in sorted(set(stored) | set(now)):
        old, new = stored.get(key, ABSENT), now.get(key, ABSENT)
        if old != new:
            code[key] = {"from": old, "to": new}
    out: dict[str, Any] = {"chapter": chapter}
    if presets is not None:
        out["presets"] = list(presets)
    out.update({"code": code, "reason": "", "evidence": []})
    return out
