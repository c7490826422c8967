"""The notebook → book pipeline: chapters, provenance banners, execution with papermill, the book build.

A *chapter* is a jupytext percent script ``notebooks/NN_name.py`` with a cell tagged ``parameters``. It is
executed with papermill into ``book/NN_name.ipynb`` (:func:`execute_chapter`), and the book is rendered from the
stored executed notebooks by ``jupyter-book build`` with execution switched off (:func:`build_book`).

Provenance and staleness
------------------------
Each chapter's first code cell calls :func:`banner`. It displays a short provenance box (git commit, preset,
device, date, sha256 of the chapter's source ``.py``) and stores the same facts as JSON in the output's metadata
under the key ``"specvae_banner"``. Before building, :func:`check_chapters` compares the stored hash with the
current source: a chapter whose source changed after it ran is *stale*; the build prints a loud warning, and the
Sphinx extension in this module (``sphinx: extra_extensions: [specvae.book]`` in ``_config.yml``) turns that
chapter's banner into a warning box saying "stale" in the HTML, without touching the stored notebook.

Stale *runs*
------------
A chapter's numbers come from stored runs, and each run records the fingerprint of the code it was trained with
(:mod:`specvae.experiments.fingerprint`). :func:`banner` checks the runs the chapter uses at its preset — the
configs returned by the chapter module's ``book_configs(preset)`` when it defines one, else ``configs(preset)``
(module ``specvae.experiments.<name>`` of chapter ``NN_name``) — and turns into a warning box when any of them
was made by code that has changed since (*stale*) or by code it cannot tell (*unknown*: made with uncommitted
changes). The banner keeps the runs' hashes, so the build re-checks them against the code of the day.
:func:`check_chapters` (``specvae book status``) counts every stored run of each chapter as current / stale /
unknown.

Missing chapters
----------------
``_toc.yml`` lists every chapter the book is meant to have. When a listed file does not exist yet,
:func:`build_book` warns loudly (naming each missing file), writes a toc without those entries to
``_build/_toc.available.yml`` and builds from it; ``strict=True`` turns missing, stale and banner-less chapters
into an error instead. The Sphinx extension also puts a notice on top of every page of such a build, naming the
chapters that are stale or left out, so a reader of the HTML sees it too.

Execution
---------
:func:`execute_chapter` converts the jupytext script in memory, runs it with papermill in a ``python3`` kernel of
*this* interpreter (a temporary kernelspec put first on ``JUPYTER_PATH``, so a stale user-level kernel cannot
shadow it), with the project root as working directory and the inline matplotlib backend, writes to a temporary
file and moves it into place only on success.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import html
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

__all__ = [
    "BANNER_KEY",
    "Banner",
    "BookBuildError",
    "Chapter",
    "ChapterExecutionError",
    "ChapterStatus",
    "available_toc",
    "banner",
    "book_problems",
    "build_book",
    "check_chapters",
    "execute_chapter",
    "execute_chapters",
    "find_banner",
    "list_chapters",
    "notebook_from_source",
    "parse_param_value",
    "resolve_chapter",
    "resolve_chapters",
    "chapter_runs",
    "source_hash",
    "toc_files",
]

#: The key, in a notebook output's metadata, under which :func:`banner` stores its provenance record.
BANNER_KEY = "specvae_banner"

#: Environment variables through which :func:`execute_chapter` tells the kernel which chapter it runs.
ENV_CHAPTER = "SPECVAE_BOOK_CHAPTER"
ENV_SOURCE = "SPECVAE_BOOK_SOURCE"
ENV_ROOT = "SPECVAE_BOOK_ROOT"

_BANNER_IMPORT_RE = re.compile(r"^(import specvae(\.book)?(\s+as\s+\w+)?|from specvae(\.book)? import [\w, ]+)$")
_CHAPTER_RE = re.compile(r"^(?P<number>\d{2})_(?P<slug>[A-Za-z0-9_]+)$")
_NOTEBOOKS = "notebooks"
_BOOK = "book"


class ChapterExecutionError(RuntimeError):
    """A chapter failed to execute; the message names the chapter, the failing cell and the error."""


class BookBuildError(RuntimeError):
    """The book could not be built (or ``strict`` found missing or stale chapters)."""


# --------------------------------------------------------------------------------------------------------------
# chapters
# --------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Chapter:
    """One chapter: its number (``"00"``), slug (``"spectral_bias"``) and project root.

    ``name`` is ``"00_spectral_bias"``; ``source`` is ``notebooks/00_spectral_bias.py``; ``executed`` is
    ``book/00_spectral_bias.ipynb``; ``module`` is ``specvae.experiments.spectral_bias`` (see the API contracts).
    """

    number: str
    slug: str
    root: Path

    @property
    def name(self) -> str:
        return f"{self.number}_{self.slug}"

    @property
    def source(self) -> Path:
        return self.root / _NOTEBOOKS / f"{self.name}.py"

    @property
    def executed(self) -> Path:
        return self.root / _BOOK / f"{self.name}.ipynb"

    @property
    def module(self) -> str:
        return f"specvae.experiments.{self.slug}"

    @classmethod
    def from_name(cls, name: str, root: str | os.PathLike | None = None) -> "Chapter":
        """A chapter from its full name ``NN_slug`` (file extension and folder are ignored)."""
        stem = Path(str(name)).name
        for suffix in (".py", ".ipynb"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        m = _CHAPTER_RE.match(stem)
        if m is None:
            raise ValueError(f"{name!r} is not a chapter name: expected 'NN_name', e.g. '00_spectral_bias'")
        return cls(m["number"], m["slug"], _root(root))


def _root(root: str | os.PathLike | None) -> Path:
    """The book project: ``root``; else the nearest folder above the current one holding ``_toc.yml`` and
    ``_config.yml`` (a Jupyter Book); else :func:`specvae.paths.project_root`."""
    if root is not None:
        return Path(root).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    from specvae.paths import project_root

    return project_root()


def list_chapters(root: str | os.PathLike | None = None) -> list[Chapter]:
    """Every chapter whose source ``notebooks/NN_name.py`` exists under ``root``, sorted by number."""
    base = _root(root)
    folder = base / _NOTEBOOKS
    chapters = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.py")):
            if _CHAPTER_RE.match(path.stem):
                chapters.append(Chapter.from_name(path.stem, base))
    return chapters


def resolve_chapter(name: str, root: str | os.PathLike | None = None) -> Chapter:
    """The chapter called ``name``: ``"00"``, ``"00_spectral_bias"``, ``"spectral_bias"`` (or a path to it).

    Raises :class:`ValueError` naming the available chapters when nothing (or more than one) matches.
    """
    chapters = list_chapters(root)
    key = Path(str(name)).name
    for suffix in (".py", ".ipynb"):
        if key.endswith(suffix):
            key = key[: -len(suffix)]
    matches = [c for c in chapters if key in (c.name, c.number, c.slug)]
    if len(matches) == 1:
        return matches[0]
    available = ", ".join(c.name for c in chapters) or f"none (no notebooks/NN_name.py under {_root(root)})"
    if not matches:
        raise ValueError(f"unknown chapter {name!r}. Available chapters: {available}")
    raise ValueError(f"chapter {name!r} is ambiguous: it matches {[c.name for c in matches]}; use the full name")


def resolve_chapters(names: Iterable[str] | None, root: str | os.PathLike | None = None) -> list[Chapter]:
    """The chapters called ``names`` (all chapters when ``names`` is empty or None), without duplicates."""
    names = list(names or [])
    if not names:
        chapters = list_chapters(root)
        if not chapters:
            raise ValueError(f"no chapters found: no notebooks/NN_name.py under {_root(root)}")
        return chapters
    out: list[Chapter] = []
    for name in names:
        chapter = resolve_chapter(name, root)
        if chapter not in out:
            out.append(chapter)
    return out


def source_hash(path: str | os.PathLike) -> str:
    """sha256 (hex) of a chapter's source file, with line endings normalised to ``\\n``."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# the provenance banner
# --------------------------------------------------------------------------------------------------------------
def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _device_name() -> str:
    """The accelerator the chapter ran on, named as the results store names it (``specvae.experiments``)."""
    try:
        from specvae.experiments.provenance import device_name

        return device_name()
    except Exception:  # the banner must never fail; fall back to a plain description
        pass
    try:
        import torch
    except Exception:  # pragma: no cover - torch is a hard dependency, but the banner must never fail
        return f"cpu ({platform.processor() or platform.machine()})"
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def _git_commit(root: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout at ``root``, as the results store records it."""
    try:
        from specvae.experiments.provenance import git_commit

        return git_commit(root)
    except ImportError:
        pass
    commit = _git(["rev-parse", "HEAD"], root)
    if commit is None:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return commit, (bool(status) if status is not None else None)


@dataclasses.dataclass
class Banner:
    """A chapter's provenance record, as displayed at the top of the chapter and stored in the notebook.

    ``source_sha256`` is the hash of the chapter's ``.py`` at execution time; ``stale`` is set by the build when
    the current source no longer has that hash. ``device`` is where the *notebook* was executed; a chapter that
    loads stored results shows, with its tables, the device each run was trained on (recorded in the run's
    result file by :mod:`specvae.experiments`). ``runs`` is the code check of the runs the chapter uses
    (:func:`chapter_runs`; None when the chapter has no run module).
    """

    chapter: str | None
    preset: str | None
    commit: str | None
    dirty: bool | None
    device: str
    date: str
    source: str | None
    source_sha256: str | None
    specvae_version: str
    torch_version: str | None
    python_version: str
    stale: bool = False
    runs: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "Banner":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    # rendering --------------------------------------------------------------------------------------------
    @property
    def runs_warning(self) -> bool:
        """Some run the chapter uses is stale or of unknown code."""
        return bool(self.runs) and bool(self.runs.get("stale") or self.runs.get("unknown"))

    def _runs_used(self) -> int:
        r = self.runs or {}
        return int(r.get("total", 0)) + int(r.get("missing", 0))

    def _runs_fact(self) -> str | None:
        if not self.runs:
            return None
        if self.runs.get("error"):
            return f"not checked ({self.runs['error']})"
        return f"{self._runs_used()} used: {self.runs.get('line', '')}"

    def _rerun_command(self) -> str:
        number = str(self.chapter or "NN")[:2]
        return f"specvae run {number} --preset {self.preset} --rerun-stale"

    def _runs_sentence(self) -> str:
        """What is wrong with the chapter's runs, in one or two sentences (for the warning box)."""
        r = self.runs or {}
        parts = []
        if r.get("stale"):
            changed = ", ".join(r.get("changed", [])[:6]) + (" ..." if len(r.get("changed", [])) > 6 else "")
            parts.append(f"{r['stale']} were trained by code that has changed since ({changed})")
        if r.get("unknown"):
            why = "; ".join(r.get("unknown_reasons", [])[:2])
            parts.append(f"{r['unknown']} by code that cannot be checked ({why})")
        return (f"Of the {self._runs_used()} runs this chapter uses, " + " and ".join(parts)
                + f". Retrain them with `{self._rerun_command()}`, then re-execute the chapter.")

    def _facts(self) -> list[tuple[str, str]]:
        commit = (self.commit or "unknown")[:12]
        if self.dirty:
            commit += " (with uncommitted changes)"
        sha = (self.source_sha256 or "unknown")[:12]
        return [
            ("preset", str(self.preset)),
            ("commit", commit),
            ("executed on", self.device),
            ("date", self.date),
            ("source", f"{self.source or '?'} (sha256 {sha})"),
            ("versions", f"specvae {self.specvae_version}, torch {self.torch_version}, "
                         f"Python {self.python_version}"),
        ] + ([("runs", runs)] if (runs := self._runs_fact()) else [])

    def to_text(self) -> str:
        """Plain-text form (what ``print`` shows outside a notebook)."""
        title = f"specvae chapter {self.chapter or '?'}"
        if self.stale:
            title += "  [STALE: the source changed after this run; re-execute it]"
        lines = [title]
        if self.runs_warning:
            import textwrap

            lines += textwrap.wrap(f"WARNING: {self._runs_sentence()}", width=100, initial_indent="  ",
                                   subsequent_indent="    ", break_on_hyphens=False)
        lines += [f"  {k:12s} {v}" for k, v in self._facts()]
        return "\n".join(lines)

    def to_html(self) -> str:
        """An admonition box styled by the book theme (a warning box when stale)."""
        kind = "warning" if self.stale or self.runs_warning else "note"
        title = f"Provenance of this chapter: {html.escape(str(self.chapter))}"
        if self.runs_warning:
            title = "Results from older code: some runs of this chapter are stale or of unknown code"
        if self.stale:
            title = "STALE chapter: its source changed after it was executed"
        rows = "".join(
            f"<li><strong>{html.escape(k)}</strong>: <code>{html.escape(v)}</code></li>" for k, v in self._facts()
        )
        stale_note = ""
        if self.stale:
            stale_note = (
                "<p>The outputs below were produced by an older version of "
                f"<code>{html.escape(str(self.source))}</code>. Re-run it with "
                f"<code>specvae book execute {html.escape(str(self.chapter))} --preset "
                f"{html.escape(str(self.preset))}</code>.</p>"
            )
        if self.runs_warning:
            sentence = html.escape(self._runs_sentence())
            sentence = re.sub(r"`([^`]*)`", r"<code>\1</code>", sentence)
            stale_note += f"<p>{sentence}</p>"
        return (
            f'<div class="admonition {kind} specvae-banner" data-specvae-stale="{str(self.stale).lower()}" '
            f'data-specvae-stale-runs="{str(self.runs_warning).lower()}">'
            f'<p class="admonition-title">{title}</p>{stale_note}<ul class="simple">{rows}</ul></div>'
        )

    def _display_bundle(self) -> tuple[dict[str, str], dict[str, Any]]:
        return {"text/html": self.to_html(), "text/plain": self.to_text()}, {BANNER_KEY: self.to_dict()}

    def __str__(self) -> str:
        return self.to_text()

    def _ipython_display_(self) -> None:
        # banner() already displayed the record (with its metadata); showing it again as the cell's value would
        # duplicate it, so the display hook shows nothing.
        if not getattr(self, "_shown", False):
            from IPython.display import publish_display_data

            data, metadata = self._display_bundle()
            publish_display_data(data, metadata)
            self._shown = True


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _chapter_from_session(root: Path) -> str | None:
    """The chapter open in Jupyter (Jupyter Server tells its kernels the notebook path in JPY_SESSION_NAME)."""
    session = os.environ.get("JPY_SESSION_NAME", "")
    stem = Path(session).stem if session else ""
    if stem and _CHAPTER_RE.match(stem) and Chapter.from_name(stem, root).source.is_file():
        return stem
    return None


def banner(
    preset: str | None = None,
    chapter: str | None = None,
    *,
    source: str | os.PathLike | None = None,
    display: bool = True,
) -> Banner:
    """Record and show the provenance of a chapter run; call it in each chapter's first code cell.

    Parameters
    ----------
    preset:
        The preset the chapter runs with (its papermill parameter ``preset``).
    chapter:
        The chapter name (``"00_spectral_bias"``). Default: the one :func:`execute_chapter` set in the kernel's
        environment, else the notebook Jupyter has open; failing that, unknown. Chapters should pass it, so that
        a run by plain papermill (which sets neither) still records the hash of the right source.
    source:
        Path to the chapter's source ``.py``. Default: from ``chapter`` (``notebooks/<chapter>.py`` under the
        project root) or from the environment set by :func:`execute_chapter`.
    display:
        In a notebook, display the banner as an output carrying the record in its metadata (the build reads it
        to flag stale chapters); outside a notebook, print it.

    Returns the :class:`Banner`; it shows nothing more when it is the value of the cell.
    """
    import specvae

    root = Path(os.environ.get(ENV_ROOT) or _root(None))
    running = os.environ.get(ENV_CHAPTER)
    if chapter and running and chapter != running:
        warnings.warn(f"banner(chapter={chapter!r}) is called while `specvae book execute` runs chapter "
                      f"{running!r}: fix the chapter name in the banner call", stacklevel=2)
    chapter = chapter or running or _chapter_from_session(root)
    src: Path | None = None
    if source is not None:
        src = Path(source)
    elif os.environ.get(ENV_SOURCE):
        src = Path(os.environ[ENV_SOURCE])
    elif chapter is not None:
        try:
            src = Chapter.from_name(chapter, root).source
        except ValueError:
            src = None
    if src is not None and not src.is_absolute():
        src = root / src
    sha = source_hash(src) if src is not None and src.is_file() else None
    if src is not None and sha is None:
        warnings.warn(f"banner: chapter source {src} not found; staleness cannot be checked", stacklevel=2)
    try:
        rel_source = src.resolve().relative_to(root.resolve()).as_posix() if src is not None else None
    except ValueError:
        rel_source = str(src)
    commit, dirty = _git_commit(root)
    try:
        import torch

        torch_version: str | None = torch.__version__
    except Exception:  # pragma: no cover
        torch_version = None
    runs = chapter_runs(chapter, preset, root) if chapter else None
    record = Banner(
        chapter=chapter,
        preset=preset,
        commit=commit,
        dirty=dirty,
        device=_device_name(),
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        source=rel_source,
        source_sha256=sha,
        specvae_version=specvae.__version__,
        torch_version=torch_version,
        python_version=platform.python_version(),
        runs=runs,
    )
    if display:
        if _in_kernel():
            from IPython.display import publish_display_data

            data, metadata = record._display_bundle()
            publish_display_data(data, metadata)
            record._shown = True  # type: ignore[attr-defined]
        else:
            print(record.to_text())
    return record


def _results_root(root: Path) -> Path:
    """The results root of the book at ``root``: ``SPECVAE_RESULTS`` when set, else ``<root>/book/results``."""
    env = os.environ.get("SPECVAE_RESULTS", "").strip()
    return Path(env).expanduser() if env else root / _BOOK / "results"


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _runs_dict(summary: Any, folder: Path, hashes: Sequence[str], root: Path) -> dict[str, Any]:
    return {**summary.to_dict(), "store": _relative(folder, root), "hashes": list(hashes)}


def _check_stored(folder: Path, hashes: Sequence[str], root: Path | None = None) -> Any:
    """The code check (:class:`~specvae.experiments.fingerprint.CodeSummary`) of the runs ``hashes`` stored in
    ``folder`` (absent or unreadable files count as not stored), honouring the declared equivalences in
    ``code_equivalence.json`` beside ``folder`` (evidence tests in ``<root>/tests``)."""
    from specvae.experiments import code_equivalence, fingerprint

    records, missing = [], []
    for digest in dict.fromkeys(hashes):
        path = folder / f"{digest}.json"
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            missing.append(digest)
    declarations = code_equivalence.load(folder.parent / code_equivalence.FILE_NAME,
                                         tests_dir=(root / "tests") if root is not None else None)
    return fingerprint.check_records(records, missing=missing, declarations=declarations)


def chapter_runs(chapter: str | None, preset: str | None, root: str | os.PathLike | None = None
                 ) -> dict[str, Any] | None:
    """The code check of the runs chapter ``chapter`` uses at ``preset``, for its banner.

    The runs are the configs of ``book_configs(preset)`` of the chapter's module
    (``specvae.experiments.<name>``), else of its ``configs(preset)``; each stored one is compared with the
    current code (:func:`specvae.experiments.fingerprint.check_record`). Returns the counts (``total``,
    ``current``, ``stale``, ``unknown``, ``missing``), the changed modules, a one-line summary (``line``), the
    results folder (``store``) and the runs' ``hashes``; None when the chapter has no run module or no preset;
    ``{"error": ...}`` when the check failed (the banner never fails).
    """
    if not chapter or preset is None:
        return None
    base = _root(root)
    try:
        import importlib

        from specvae.experiments import fingerprint

        name = fingerprint.chapter_module(chapter)
        if name is None or not fingerprint.module_exists(name):
            return None
        module = importlib.import_module(name)
        configs = getattr(module, "book_configs", None) or getattr(module, "configs", None)
        if configs is None:
            return None
        from specvae.experiments.hashing import config_hash

        hashes = [config_hash(cfg) for cfg in configs(preset)]
        folder = _results_root(base) / str(getattr(module, "CHAPTER", chapter))
        return _runs_dict(_check_stored(folder, hashes, base), folder, hashes, base)
    except Exception as exc:  # noqa: BLE001 - the banner must never fail
        return {"error": f"{type(exc).__name__}: {exc}"}


def _recheck_runs(runs: Mapping[str, Any] | None, root: Path) -> dict[str, Any] | None:
    """A banner's ``runs`` checked again against the current code (at build time)."""
    if not runs or not runs.get("hashes") or not runs.get("store"):
        return dict(runs) if runs else None
    folder = Path(runs["store"])
    folder = folder if folder.is_absolute() else root / folder
    try:
        return _runs_dict(_check_stored(folder, runs["hashes"], root), folder, runs["hashes"], root)
    except Exception as exc:  # noqa: BLE001 - a build must not fail on a check
        return {**runs, "error": f"{type(exc).__name__}: {exc}"}


def find_banner(nb: Mapping[str, Any] | str | os.PathLike) -> Banner | None:
    """The provenance record stored by :func:`banner` in an executed notebook (a path or a loaded notebook)."""
    if not isinstance(nb, Mapping):
        nb = json.loads(Path(nb).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            record = (output.get("metadata") or {}).get(BANNER_KEY)
            if isinstance(record, Mapping):
                return Banner.from_dict(record)
    return None


# --------------------------------------------------------------------------------------------------------------
# chapter status (staleness)
# --------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ChapterStatus:
    """Where one chapter stands: ``state`` is one of

    ``"ok"`` (executed, source unchanged since), ``"stale"`` (source changed after the run), ``"no-banner"``
    (executed notebook without a provenance banner: cannot tell), ``"not-executed"`` (source but no executed
    notebook) or ``"no-source"`` (executed notebook whose source ``.py`` is gone).

    ``runs`` is the code check of every run stored for the chapter
    (:class:`~specvae.experiments.fingerprint.CodeSummary`; None when none is stored). ``ok`` needs both the
    notebook up to date and every stored run current.
    """

    name: str
    state: str
    executed: Path | None
    source: Path | None
    banner: Banner | None = None
    current_sha256: str | None = None
    runs: Any = None

    @property
    def ok(self) -> bool:
        return self.state == "ok" and self.runs_ok

    @property
    def runs_ok(self) -> bool:
        """No stored run of the chapter is stale or of unknown code."""
        return self.runs is None or self.runs.ok

    def runs_line(self) -> str | None:
        """``runs: N stored, a current, b stale, c unknown (...)``, or None without runs."""
        if self.runs is None:
            return None
        return f"runs: {len(self.runs.states)} stored, {self.runs.line()}"

    def changed_line(self, max_units: int = 6) -> str | None:
        """``changed since: module:name, ...`` (the definitions changed since the stale runs; ``+``/``-``: a
        definition they did not reach / no longer reach), or None."""
        names = self.runs.changed_units() if self.runs is not None else []
        if not names:
            return None
        more = f" (+{len(names) - max_units} more)" if len(names) > max_units else ""
        return "changed since: " + ", ".join(names[:max_units]) + more

    def declared_line(self) -> str | None:
        """``declared equivalent: #N (reason …), ...`` (the code_equivalence.json entries that keep changed runs
        current), or None."""
        labels = self.runs.declared() if self.runs is not None else []
        return "declared equivalent (code_equivalence.json): " + "; ".join(labels) if labels else None

    def declaration_problems(self) -> list[str]:
        """The refused entries of code_equivalence.json (one line each)."""
        return list(getattr(self.runs, "problems", []) or [])

    def runs_problem(self) -> str | None:
        """One line saying what is wrong with the stored runs and how to retrain them (None when nothing is)."""
        if self.runs_ok:
            return None
        presets = self.runs.rerun_presets() or [self.banner.preset if self.banner else "<preset>"]
        commands = " and ".join(f"specvae run {self.name[:2]} --preset {p} --rerun-stale" for p in presets)
        changed = self.changed_line()
        return (f"{self.name}: {self.runs_line()}{'; ' + changed if changed else ''}. "
                f"Retrain them: {commands}")

    def message(self) -> str:
        b = self.banner
        if self.state == "ok":
            return f"{self.name}: up to date (preset {b.preset}, {b.date}, commit {(b.commit or '?')[:10]})"
        if self.state == "stale":
            return (
                f"{self.name}: STALE. notebooks/{self.name}.py changed after the chapter was executed "
                f"({b.date}, preset {b.preset}, source sha256 {str(b.source_sha256)[:12]} -> now "
                f"{str(self.current_sha256)[:12]}). Re-run: specvae book execute {self.name} --preset {b.preset}"
            )
        if self.state == "no-banner" and b is not None:
            return (
                f"{self.name}: its banner records no source hash (banner() could not tell which chapter ran; "
                f"pass chapter='{self.name}'); cannot tell whether it is stale"
            )
        if self.state == "no-banner":
            return (
                f"{self.name}: executed notebook has no provenance banner (its first code cell must call "
                "specvae.book.banner(preset=preset)); cannot tell whether it is stale"
            )
        if self.state == "not-executed":
            return f"{self.name}: not executed yet. Run: specvae book execute {self.name} --preset <preset>"
        return f"{self.name}: executed notebook {self.executed} has no source notebooks/{self.name}.py"


def check_chapters(root: str | os.PathLike | None = None, book_dir: str | os.PathLike | None = None, *,
                   runs: bool = True) -> list[ChapterStatus]:
    """The status of every chapter (sources under ``notebooks/``, executed notebooks under ``book_dir``) and,
    with ``runs``, the code check of the runs stored for it (``SPECVAE_RESULTS`` or ``<root>/book/results``)."""
    base = _root(root)
    book = Path(book_dir) if book_dir is not None else base / _BOOK
    names = {c.name for c in list_chapters(base)}
    if book.is_dir():
        names |= {p.stem for p in book.glob("*.ipynb") if _CHAPTER_RE.match(p.stem)}
    results = _results_root(base)
    out = []
    for name in sorted(names):
        status = _notebook_status(name, base, book)
        folder = results / name
        stored = sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []
        if runs and stored:
            status.runs = _check_stored(folder, stored, base)
        out.append(status)
    return out


def _notebook_status(name: str, base: Path, book: Path) -> ChapterStatus:
    """The state of chapter ``name``'s executed notebook (see :class:`ChapterStatus`)."""
    chapter = Chapter.from_name(name, base)
    src = chapter.source if chapter.source.is_file() else None
    executed = book / f"{name}.ipynb"
    if not executed.is_file():
        return ChapterStatus(name, "not-executed", None, src)
    record = find_banner(executed)
    if src is None:
        return ChapterStatus(name, "no-source", executed, None, record)
    current = source_hash(src)
    if record is None or record.source_sha256 is None:
        state = "no-banner"
    else:
        state = "ok" if record.source_sha256 == current else "stale"
    return ChapterStatus(name, state, executed, src, record, current)


# --------------------------------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------------------------------
def parse_param_value(text: str) -> Any:
    """Type a parameter given on the command line, as papermill's ``-p`` does (and YAML for lists/maps).

    ``"none"``/``"null"`` → None; ``"true"``/``"false"`` → bool (any case); integers → int; ``"1e-4"``, ``"0.5"``
    → float; ``[1, 2]`` or ``{a: 1}`` → YAML list / mapping; anything else stays a string.
    """
    if not isinstance(text, str):
        return text
    low = text.strip().lower()
    if low in ("none", "null", "~"):
        return None
    if low == "true":
        return True
    if low == "false":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    if text.strip()[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"cannot parse parameter value {text!r} as a YAML list/mapping: {exc}") from exc
    return text


def notebook_from_source(source: str | os.PathLike, kernel_name: str = "python3"):
    """Read a jupytext percent script into an ``nbformat`` notebook with the kernelspec papermill needs."""
    import jupytext

    nb = jupytext.read(str(source))
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    # jupytext's bookkeeping (text_representation, ...) says nothing useful about an executed chapter
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:  # papermill expects every cell to have a tags list
        cell.metadata.setdefault("tags", [])
    return nb


def _parameter_names(nb) -> list[str] | None:
    """Names assigned in the cell tagged ``parameters`` (None when there is no such cell)."""
    from papermill.inspection import _infer_parameters

    if not any("parameters" in (c.get("metadata", {}).get("tags") or []) for c in nb.cells):
        return None
    return [p.name for p in _infer_parameters(nb)]


@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _move_into_place(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst`` atomically: a rename on one file system, else copy beside ``dst`` and rename."""
    try:
        os.replace(src, dst)
        return
    except OSError:
        pass
    fd, staged = tempfile.mkstemp(prefix=f".{dst.stem}.partial-", suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, staged)
        shutil.copymode(src, staged)
        os.replace(staged, dst)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
    src.unlink()


def _write_kernelspec(folder: Path, name: str) -> None:
    """A Jupyter kernelspec ``name`` under ``folder/kernels`` that starts ipykernel with ``sys.executable``."""
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (specvae)",
        "language": "python",
    }
    target = folder / "kernels" / name
    target.mkdir(parents=True, exist_ok=True)
    (target / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")


def _finalise(path: Path, chapter: Chapter, final: Path) -> None:
    """Tidy an executed chapter before it is moved into place.

    papermill's metadata names the real source and destination (not the temporary files), and the cell that only
    calls :func:`banner` is tagged ``remove-input``: the book shows the provenance box, not the call. papermill's
    injected-parameters cell is tagged ``hide-input`` (collapsed, one click away), so the page does not show the
    parameters twice while the values actually used stay readable.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("papermill")
    if meta is not None:
        for key, value in (("input_path", chapter.source), ("output_path", final)):
            try:
                meta[key] = value.relative_to(chapter.root).as_posix()
            except ValueError:
                meta[key] = str(value)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
        if not any(BANNER_KEY in (o.get("metadata") or {}) for o in cell.get("outputs", [])):
            continue
        lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if lines and all("banner" in ln or _BANNER_IMPORT_RE.match(ln) for ln in lines):
            tags = cell.metadata.setdefault("tags", [])
            if "remove-input" not in tags:
                tags.append("remove-input")
    nbformat.write(nb, str(path))


def _cell_error(nb) -> str:
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                src = cell.get("source", "").strip().splitlines()
                first = src[0] if src else ""
                return f"cell {i} ({first[:80]!r}): {output.get('ename')}: {output.get('evalue')}"
    return "unknown cell"


def execute_chapter(
    chapter: Chapter | str,
    preset: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    root: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    timeout: int | None = None,
) -> Path:
    """Execute one chapter with papermill into ``<output_dir>/<chapter>.ipynb`` and return that path.

    The jupytext source is converted in memory (kernelspec ``kernel_name``: the ``python3`` kernel of the running
    environment), parameterised with ``preset`` and ``parameters`` and run with the project root as working
    directory. The result is written to a temporary file and moved into place only when every cell succeeded:
    a failed run leaves the previous executed chapter untouched, keeps the failed notebook under
    ``<root>/_build/failed/`` and raises :class:`ChapterExecutionError` naming the failing cell.

    Unknown parameter names (not assigned in the chapter's ``parameters`` cell) are an error, so a typo cannot
    silently run the default.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    base = _root(root)
    if isinstance(chapter, str):
        chapter = resolve_chapter(chapter, base)
    if not chapter.source.is_file():
        raise FileNotFoundError(f"chapter source {chapter.source} does not exist")
    out_dir = Path(output_dir).expanduser().resolve() if output_dir is not None else base / _BOOK
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{chapter.name}.ipynb"

    params: dict[str, Any] = dict(parameters or {})
    if preset is not None:
        params["preset"] = preset
    nb = notebook_from_source(chapter.source, kernel_name)
    known = _parameter_names(nb)
    if known is None:
        if params:
            raise ValueError(
                f"chapter {chapter.name} has no cell tagged 'parameters' (add `# %% tags=[\"parameters\"]` "
                f"above its parameter assignments), so it cannot take {sorted(params)}"
            )
    else:
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {unknown} for chapter {chapter.name}; its parameters are {known}"
            )

    kernel_dir = tempfile.TemporaryDirectory(prefix="specvae-kernel-")
    _write_kernelspec(Path(kernel_dir.name), kernel_name)
    # the run is written under _build/executing/ (ignored by git, never mistaken for a chapter), then moved
    work_dir = base / "_build" / "executing"
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{chapter.name}.", suffix=".ipynb", dir=work_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    env = {
        ENV_CHAPTER: chapter.name,
        ENV_SOURCE: str(chapter.source),
        ENV_ROOT: str(base),
        # figures must reach the notebook even when the caller runs with MPLBACKEND=Agg (as the tests and CI do)
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # searched first: a kernelspec that runs this very interpreter (a stale user-level python3 kernel,
        # e.g. from `ipykernel install --user`, would otherwise run the chapter in another environment)
        "JUPYTER_PATH": os.pathsep.join(p for p in (kernel_dir.name, os.environ.get("JUPYTER_PATH", "")) if p),
    }
    try:
        with _environ(env):
            papermill.execute_notebook(
                nb,
                str(tmp),
                parameters=params,
                kernel_name=kernel_name,
                language="python",
                progress_bar=progress,
                cwd=str(base),
                execution_timeout=timeout,
            )
        _finalise(tmp, chapter, final)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; an executed chapter is an ordinary file
        _move_into_place(tmp, final)
    except PapermillExecutionError as exc:
        failed_dir = base / "_build" / "failed"
        failed_dir.mkdir(parents=True, exist_ok=True)
        failed = failed_dir / f"{chapter.name}.ipynb"
        where = f"cell {exc.exec_count}"
        try:
            import nbformat

            where = _cell_error(nbformat.read(str(tmp), as_version=4))
            shutil.move(str(tmp), failed)
        except Exception:  # the failed notebook is a courtesy; the error below is what matters
            failed = None  # type: ignore[assignment]
        kept = f"; failed notebook kept at {failed}" if failed else ""
        old = f"{final} left as it was" if final.exists() else f"nothing written to {final}"
        raise ChapterExecutionError(
            f"chapter {chapter.name} failed in {where} ({old}{kept})"
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
        kernel_dir.cleanup()
    return final


def execute_chapters(
    chapters: Iterable[str | Chapter] | None = None,
    preset: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    root: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    kernel_name: str = "python3",
    progress: bool = True,
    keep_going: bool = False,
    timeout: int | None = None,
) -> list[Path]:
    """Execute several chapters (all of them when ``chapters`` is empty) in order; see :func:`execute_chapter`.

    With ``keep_going`` a failing chapter is reported and the others still run; the error is raised at the end.
    """
    import time

    base = _root(root)
    resolved = [c if isinstance(c, Chapter) else resolve_chapter(c, base) for c in (chapters or [])]
    if not resolved:
        resolved = resolve_chapters(None, base)
    done: list[Path] = []
    errors: list[str] = []
    for i, chapter in enumerate(resolved, 1):
        if progress:
            print(f"[{i}/{len(resolved)}] executing {chapter.name} (preset {preset or 'default'}) ...",
                  file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            path = execute_chapter(chapter, preset, parameters, root=base, output_dir=output_dir,
                                   kernel_name=kernel_name, progress=progress, timeout=timeout)
        except ChapterExecutionError as exc:
            if not keep_going:
                raise
            errors.append(str(exc))
            print(f"FAILED: {exc}", file=sys.stderr, flush=True)
            continue
        done.append(path)
        if progress:
            print(f"[{i}/{len(resolved)}] {chapter.name} -> {path} ({time.perf_counter() - start:.1f} s)",
                  file=sys.stderr, flush=True)
    if errors:
        raise ChapterExecutionError("; ".join(errors))
    return done


# --------------------------------------------------------------------------------------------------------------
# table of contents and the build
# --------------------------------------------------------------------------------------------------------------
def _toc_entries(node: Any) -> Iterator[dict]:
    """Every mapping with a ``file`` key in a jupyter-book toc (depth first)."""
    if isinstance(node, Mapping):
        if "file" in node:
            yield node  # type: ignore[misc]
        for value in node.values():
            yield from _toc_entries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _toc_entries(item)


_DOC_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")


def _doc_exists(root: Path, doc: str) -> bool:
    path = root / doc
    if path.suffix in _DOC_SUFFIXES:
        return path.is_file()
    return any(path.with_name(path.name + s).is_file() for s in _DOC_SUFFIXES)


def toc_files(toc: str | os.PathLike) -> list[str]:
    """Every document a jupyter-book 1.x ``_toc.yml`` names (the root first), as written there."""
    import yaml

    data = yaml.safe_load(Path(toc).read_text(encoding="utf-8"))
    files = [str(data["root"])] if data.get("root") else []
    files += [str(e["file"]) for e in _toc_entries({k: v for k, v in data.items() if k != "root"})]
    return files


def _prune(node: Any, root: Path, missing: list[str]) -> Any:
    """A copy of a toc (sub)tree without the entries whose files are missing (collected in ``missing``)."""
    if isinstance(node, list):
        out = []
        for item in node:
            if isinstance(item, Mapping) and "file" in item and not _doc_exists(root, str(item["file"])):
                missing.append(str(item["file"]))
                # an absent page takes its sub-pages with it; report them too
                missing.extend(str(e["file"]) for e in _toc_entries({k: v for k, v in item.items() if k != "file"}))
                continue
            pruned = _prune(item, root, missing)
            if isinstance(pruned, Mapping) and "chapters" in pruned and not pruned["chapters"]:
                continue  # a part whose chapters are all missing
            out.append(pruned)
        return out
    if isinstance(node, Mapping):
        out_map = {}
        for key, value in node.items():
            pruned = _prune(value, root, missing)
            if key in ("sections", "chapters", "parts") and isinstance(pruned, list) and not pruned:
                if key == "chapters":
                    out_map[key] = pruned  # removed by the caller (the part has nothing left)
                continue
            out_map[key] = pruned
        return out_map
    return node


def available_toc(root: str | os.PathLike | None = None, toc: str | os.PathLike | None = None
                  ) -> tuple[dict, list[str]]:
    """The project's toc without the entries whose files do not exist, and the list of those missing files."""
    import yaml

    base = _root(root)
    toc_path = Path(toc) if toc is not None else base / "_toc.yml"
    data = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    if not data.get("root") or not _doc_exists(base, str(data["root"])):
        raise BookBuildError(f"the toc's root page {data.get('root')!r} does not exist under {base}")
    missing: list[str] = []
    pruned = {k: (_prune(v, base, missing) if k != "root" else v) for k, v in data.items()}
    return pruned, missing


def _jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    raise BookBuildError("jupyter-book is not installed in this environment: run `make install` (pip install -e .)")


def build_book(
    root: str | os.PathLike | None = None,
    *,
    strict: bool = False,
    warnings_as_errors: bool = False,
    output_dir: str | os.PathLike | None = None,
    builder: str = "html",
    all_pages: bool = False,
    quiet: bool = False,
) -> Path:
    """Render the book from the stored executed chapters with ``jupyter-book build`` (no execution).

    Before building, every chapter is checked (:func:`check_chapters`): stale chapters, executed notebooks
    without a banner, chapters not executed yet and toc entries whose files are missing are reported loudly on
    stderr. With ``strict`` any of these is an error (:class:`BookBuildError`) and nothing is built. Otherwise
    the book is built from the entries that exist (the pruned toc is written to ``_build/_toc.available.yml``).
    ``warnings_as_errors`` passes ``-W --keep-going`` to Sphinx. Returns the folder holding the HTML
    (``<root>/_build/html`` by default).
    """
    import yaml

    base = _root(root)
    problems = book_problems(base)
    toc, _ = available_toc(base)
    if problems:
        bar = "!" * 100
        text = "\n".join([bar, "specvae book build: WARNING", *[f"  - {p}" for p in problems], bar])
        print(text, file=sys.stderr, flush=True)
        if strict:
            raise BookBuildError("strict build refused: " + "; ".join(problems))

    out = Path(output_dir).expanduser().resolve() if output_dir is not None else base
    (base / "_build").mkdir(exist_ok=True)
    toc_path = base / "_build" / "_toc.available.yml"
    toc_path.write_text(
        "# generated by `specvae book build` from _toc.yml, without the entries whose files are missing\n"
        + yaml.safe_dump(toc, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    cmd = [*_jupyter_book_command(), "build", str(base), "--toc", str(toc_path), "--path-output", str(out),
           "--builder", builder]
    if warnings_as_errors:
        cmd += ["-W", "--keep-going"]
    if all_pages:
        cmd.append("--all")
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, cwd=base)
    if proc.returncode != 0:
        raise BookBuildError(f"jupyter-book build failed (exit code {proc.returncode}): {' '.join(cmd)}")
    return out / "_build" / builder


# --------------------------------------------------------------------------------------------------------------
# Sphinx extension: mark stale chapters in the HTML without touching the stored notebooks
# --------------------------------------------------------------------------------------------------------------
def _mark_stale(app: Any, docname: str, source: list[str]) -> None:
    """``source-read`` handler: when an executed chapter is stale, or the runs its banner recorded are stale or
    of unknown code now, rewrite its banner output to say so."""
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".ipynb" or not _CHAPTER_RE.match(path.stem):
        return
    try:
        nb = json.loads(source[0])
    except (ValueError, IndexError):
        return
    srcdir = Path(app.srcdir)
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = (output.get("metadata") or {}).get(BANNER_KEY)
            if not isinstance(record, Mapping):
                continue
            from sphinx.util import logging as sphinx_logging

            logger = sphinx_logging.getLogger(__name__)
            b = Banner.from_dict(record)
            src = srcdir / b.source if b.source else Chapter.from_name(path.stem, srcdir).source
            changed = False
            if src.is_file() and b.source_sha256 is not None and source_hash(src) != b.source_sha256:
                b.stale = changed = True
                logger.warning(f"{docname}: STALE chapter (its source {b.source} changed after it was executed)")
            if b.runs and b.runs.get("hashes"):
                runs = _recheck_runs(b.runs, srcdir)
                if runs != b.runs:
                    b.runs, changed = runs, True
                if b.runs_warning:
                    logger.warning(f"{docname}: runs of older code ({b.runs.get('line')})")
            if changed:
                data, _ = b._display_bundle()
                output.setdefault("data", {}).update(data)
                source[0] = json.dumps(nb)
            return


def _chapters_outdated(app: Any, env: Any, added: set, changed: set, removed: set) -> list[str]:
    """``env-get-outdated`` handler: re-read every executed chapter on each build.

    A chapter's staleness depends on its source ``.py``, which Sphinx does not track; re-reading the few chapter
    notebooks costs little and keeps the banners right on incremental builds.
    """
    return [d for d in env.found_docs if _CHAPTER_RE.match(d.rsplit("/", 1)[-1]) and d not in added | changed]


def book_problems(root: str | os.PathLike | None = None) -> list[str]:
    """One line per problem of the book at ``root``: chapters stale, not executed, without banner or source,
    and ``_toc.yml`` entries whose files do not exist (each line says what to do)."""
    base = _root(root)
    problems = []
    for status in check_chapters(base):
        if status.state != "ok":
            problems.append(status.message())
        if not status.runs_ok:
            problems.append(status.runs_problem())
        problems += [p for p in status.declaration_problems() if p not in problems]
    if (base / "_toc.yml").is_file():
        _, missing = available_toc(base)
        problems += [f"{doc}: listed in _toc.yml but the file does not exist; left out of this build"
                     for doc in missing]
    return problems


def _announce_problems(app: Any, config: Any) -> None:
    """``config-inited`` handler: put a notice on top of every page when chapters are missing or stale, or use
    runs of older code."""
    srcdir = Path(app.srcdir)
    try:
        statuses = check_chapters(srcdir)
        _, missing = available_toc(srcdir) if (srcdir / "_toc.yml").is_file() else ({}, [])
    except Exception:  # a broken toc is reported by jupyter-book itself
        return
    stale = [s.name for s in statuses if s.state == "stale"]
    old_runs = [s.name for s in statuses if not s.runs_ok]
    absent = sorted({Path(d).name for d in missing} | {s.name for s in statuses if s.state == "not-executed"})
    parts = []
    if stale:
        parts.append("Stale (source changed after execution): " + ", ".join(stale))
    if old_runs:
        parts.append("Results from runs of older or unknown code: " + ", ".join(old_runs))
    if absent:
        parts.append("Not in this build (not executed or missing): " + ", ".join(absent))
    if not parts:
        return
    options = dict(config.html_theme_options or {})
    if not options.get("announcement"):
        lead = "incomplete or out of date" if old_runs else "incomplete"
        options["announcement"] = f"This build of the book is {lead}. " + ". ".join(parts) + "."
        config.html_theme_options = options


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point (``sphinx: extra_extensions: [specvae.book]`` in ``_config.yml``).

    Marks stale chapters in their banner, re-reads chapters on every build, and announces on every page the
    chapters that are stale or missing from the build. It also works for a plain ``jupyter-book build .``.
    """
    app.connect("config-inited", _announce_problems)
    app.connect("source-read", _mark_stale)
    app.connect("env-get-outdated", _chapters_outdated)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
