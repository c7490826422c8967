"""Tests of code fingerprints (specvae.experiments.fingerprint) and of stale-run detection end to end.

Small throw-away packages are written to a temporary folder (each test its own package name, so no module
object is shared between tests) and added to :data:`fingerprint.PACKAGES`, so the fingerprint follows their
imports as it follows ``specvae``'s.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specvae.experiments import ResultStore, config_hash, fingerprint, run_grid

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def make_package(tmp_path, monkeypatch):
    """``make_package(name, files)``: write a package under tmp_path/src, importable and followed by the
    fingerprint; its modules are dropped from sys.modules afterwards."""
    src = tmp_path / "src"
    names: list[str] = []

    def make(name: str, files: dict[str, str]) -> Path:
        _write(src, {f"{name}/{rel}": text for rel, text in files.items()})
        names.append(name)
        monkeypatch.syspath_prepend(str(src))
        monkeypatch.setattr(fingerprint, "PACKAGES", (*fingerprint.PACKAGES, name))
        fingerprint.clear_caches()
        importlib.invalidate_caches()
        return src / name

    yield make
    for mod in [m for m in sys.modules if any(m == n or m.startswith(n + ".") for n in names)]:
        del sys.modules[mod]
    fingerprint.clear_caches()


LOSSES_PACKAGE = {
    "__init__.py": '"""A package whose __init__ re-exports everything (as specvae.losses does)."""\n'
                   "from .losses import AzimuthalLoss, FFTLoss, SCALE\n",
    "losses/__init__.py": """
        from .fft import FFTLoss
        from lp_PKG.losses.azimuthal import AzimuthalLoss
        from lp_PKG.losses.consts import SCALE
        """,
    "losses/fft.py": """
        from lp_PKG.util import helper

        class FFTLoss:
            def __call__(self, x):
                return helper(x) * 2
        """,
    "losses/azimuthal.py": """
        class AzimuthalLoss:
            pass
        """,
    "losses/consts.py": "SCALE = 2.0\n",
    "util.py": "def helper(x):\n    return x + 1\n",
    "local_dep.py": "def inner(x):\n    return -x\n",
    "typing_only.py": "class Hint:\n    pass\n",
    "unused.py": "def nobody_imports_me():\n    return 0\n",
    "lazy/__init__.py": """
        import importlib

        def __getattr__(name):
            if name == "thing":
                return importlib.import_module("lp_PKG.lazy.impl").thing
            raise AttributeError(name)
        """,
    "lazy/impl.py": "def thing():\n    return 1\n",
    "chapter.py": """
        '''A chapter run module.'''
        from typing import TYPE_CHECKING

        from lp_PKG.losses import FFTLoss, SCALE
        from lp_PKG.lazy import thing

        if TYPE_CHECKING:
            from lp_PKG.typing_only import Hint


        def run(cfg):
            from lp_PKG.local_dep import inner  # a function-local import

            return {"metrics": {"value": inner(FFTLoss()(cfg.x)) * SCALE + thing()}}
        """,
}


def _losses_package(make_package, name: str) -> Path:
    return make_package(name, {k: v.replace("lp_PKG", name) for k, v in LOSSES_PACKAGE.items()})


# ----------------------------------------------------------------------------------------------------------
# hashing code, not text
# ----------------------------------------------------------------------------------------------------------
MODULE = '''
"""Module docstring."""
import math

# a comment
RATE = 0.5


def loss(x, y):
    """Squared error, scaled."""
    return RATE * (x - y) ** 2


class Model:
    """A model."""

    width: int = 4
    "attribute docstring"

    def forward(self, x):
        return math.sqrt(x) * self.width
'''

REWORDED = '''
"""A completely different module docstring, longer,
over two lines."""
import math
RATE = 0.5   # the rate, now commented
def loss(x, y):
    # reformatted, docstring gone
    return (RATE * (x - y) ** 2)
class Model:
    width: int = 4
    def forward(self, x):
        """Now with a docstring."""
        return math.sqrt(x) * self.width
'''


def test_docstring_comment_and_layout_edits_keep_the_hash():
    assert fingerprint.code_hash(MODULE) == fingerprint.code_hash(REWORDED)
    assert len(fingerprint.code_hash(MODULE)) == 16


@pytest.mark.parametrize("old, new", [
    ("RATE = 0.5", "RATE = 0.25"),                 # a constant
    ("(x - y) ** 2", "abs(x - y)"),                # the formula
    ("math.sqrt(x)", "math.exp(x)"),               # a called function
    ("width: int = 4", "width: int = 8"),          # a dataclass-style default
    ("import math", "import math\nimport os"),     # an import
    ("return RATE", "x = x\n    return RATE"),     # a statement
])
def test_code_edits_change_the_hash(old, new):
    assert old in MODULE
    assert fingerprint.code_hash(MODULE.replace(old, new)) != fingerprint.code_hash(MODULE)


def test_overall_fingerprint_depends_on_every_unit_hash():
    a = fingerprint.CodeFingerprint.of("m", {"m:f": "1" * 16, "n:g": "2" * 16})
    b = fingerprint.CodeFingerprint.of("m", {"n:g": "2" * 16, "m:f": "1" * 16})
    c = fingerprint.CodeFingerprint.of("m", {"m:f": "1" * 16, "n:g": "3" * 16})
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert fingerprint.CodeFingerprint.from_record(a.to_record()) == a
    assert a.to_record()["units"] == {"m": {"f": "1" * 16}, "n": {"g": "2" * 16}}  # grouped by module


# ----------------------------------------------------------------------------------------------------------
# which definitions count
# ----------------------------------------------------------------------------------------------------------
FPA_UNITS = {
    "fpa.chapter:run",
    # the import bindings the run function uses, and what they point at
    "fpa.chapter:FFTLoss", "fpa.losses:FFTLoss", "fpa.losses.fft:FFTLoss", "fpa.losses.fft:helper", "fpa.util:helper",
    "fpa.chapter:SCALE", "fpa.losses:SCALE", "fpa.losses.consts:SCALE",
    # a lazy export: the package's __getattr__ (and its import) and the function it serves
    "fpa.chapter:thing", "fpa.lazy:__getattr__", "fpa.lazy:importlib", "fpa.lazy.impl:thing",
    # the function-local import
    "fpa.local_dep:inner",
}


def test_units_follow_definitions_through_reexports_lazy_exports_and_local_imports(make_package):
    _losses_package(make_package, "fpa")
    fp = fingerprint.code_fingerprint("fpa.chapter")
    assert set(fp.units) == FPA_UNITS
    # not the sibling AzimuthalLoss re-exported beside FFTLoss, not a module nobody imports, not a TYPE_CHECKING
    # import (the chapter's TYPE_CHECKING and typing bindings are not reached by run)
    assert fingerprint.dependencies("fpa.chapter") == {
        m: fp.files[m] for m in ["fpa.chapter", "fpa.lazy", "fpa.lazy.impl", "fpa.local_dep", "fpa.losses",
                                 "fpa.losses.consts", "fpa.losses.fft", "fpa.util"]}
    assert fp.files["fpa.losses.fft"].name == "fft.py"


def test_excluded_modules_are_neither_hashed_nor_followed(make_package):
    _losses_package(make_package, "fpb")
    deps = fingerprint.dependencies("fpb.chapter", exclude={"fpb.losses.fft"})
    assert "fpb.losses.fft" not in deps and "fpb.util" not in deps  # util is reached only from fft
    assert "fpb.local_dep" in deps


def _editor(root: Path, run_module: str):
    def edit(rel: str, old: str, new: str) -> fingerprint.CodeFingerprint:
        path = root / rel
        text = path.read_text()
        assert old in text, (rel, old)
        path.write_text(text.replace(old, new))
        return fingerprint.code_fingerprint(run_module)
    return edit


def _changed(a: fingerprint.CodeFingerprint, b: fingerprint.CodeFingerprint) -> set[str]:
    return set(fingerprint._compare(a.units, b.units))


def test_edits_in_reached_definitions_change_the_fingerprint_and_name_the_unit(make_package):
    root = _losses_package(make_package, "fpc")
    edit = _editor(root, "fpc.chapter")
    before = fingerprint.code_fingerprint("fpc.chapter")
    # comments and docstrings in a dependency: same fingerprint
    same = edit("util.py", "def helper(x):\n", 'def helper(x):\n    """Add one."""  # documented now\n')
    assert same.fingerprint == before.fingerprint
    # a module the run does not import, the sibling re-exported beside FFTLoss: same fingerprint
    assert edit("unused.py", "return 0", "return 1").fingerprint == before.fingerprint
    assert edit("losses/azimuthal.py", "pass", "scale = 3").fingerprint == before.fingerprint
    # the re-exporting __init__ gains an export: same; it points FFTLoss elsewhere: changed
    assert edit("losses/__init__.py", "from .fft import FFTLoss", "from .fft import FFTLoss\nEXTRA = 1"
                ).fingerprint == before.fingerprint
    # code in a (transitive) dependency
    changed = edit("util.py", "x + 1", "x + 2")
    assert _changed(before, changed) == {"fpc.util:helper"}
    # code in a module imported inside the run function only
    local = edit("local_dep.py", "return -x", "return -2 * x")
    assert _changed(changed, local) == {"fpc.local_dep:inner"}
    # a re-export pointed at another class: the binding in the __init__ and what it reaches now
    moved = edit("losses/__init__.py", "from .fft import FFTLoss", "from .azimuthal import AzimuthalLoss as FFTLoss")
    assert _changed(local, moved) == {"fpc.losses:FFTLoss", "+fpc.losses.azimuthal:AzimuthalLoss",
                                      "-fpc.losses.fft:FFTLoss", "-fpc.losses.fft:helper", "-fpc.util:helper"}


REPORTING_PACKAGE = {
    "__init__.py": "",
    "maths.py": """
        import math

        RATE = 0.5


        def scaled(x):
            return RATE * x


        def unused_helper(x):
            return math.sqrt(x)
        """,
    "report.py": """
        import numpy as np

        def table(values):
            return np.round(values, 2)
        """,
    "chapter.py": """
        from dataclasses import dataclass

        from PKG import report
        from PKG.maths import scaled, unused_helper
        from PKG.report import table


        @dataclass(frozen=True)
        class RunConfig:
            x: float

            def value(self):
                return self.x


        def run(cfg: RunConfig):
            return {"metrics": {"y": scaled(cfg.value())}}


        def report_table(results):
            return table([unused_helper(r) for r in results]) + report.table([1.0])
        """,
}


def test_report_code_and_unreached_definitions_do_not_count(make_package):
    root = make_package("fpr", {k: textwrap.dedent(v).replace("PKG", "fpr") for k, v in REPORTING_PACKAGE.items()})
    edit = _editor(root, "fpr.chapter")
    before = fingerprint.code_fingerprint("fpr.chapter")
    assert set(before.units) == {"fpr.chapter:run", "fpr.chapter:RunConfig", "fpr.chapter:dataclass",
                                 "fpr.chapter:scaled", "fpr.maths:scaled", "fpr.maths:RATE"}
    # the report module, the chapter's report function and an unused helper beside a used one: no change
    assert edit("report.py", "2)", "3)").fingerprint == before.fingerprint
    assert edit("chapter.py", "report.table([1.0])", "report.table([2.0])").fingerprint == before.fingerprint
    assert edit("maths.py", "math.sqrt(x)", "math.exp(x)").fingerprint == before.fingerprint
    # the config class (a method the run calls on its argument), a constant the run reaches
    after = edit("chapter.py", "return self.x", "return 2 * self.x")
    assert _changed(before, after) == {"fpr.chapter:RunConfig"}
    assert _changed(after, edit("maths.py", "RATE = 0.5", "RATE = 0.25")) == {"fpr.maths:RATE"}


CONSERVATIVE_PACKAGE = {
    "__init__.py": "",
    "tools.py": """
        import os

        def a():
            return 1


        def b():
            return 2
        """,
    "table.py": """
        def first():
            return 1


        def second():
            return 2


        def pick(name):
            return globals()[name]()
        """,
    "sideeffect.py": """
        import os

        os.environ.setdefault("FPS_FLAG", "1")   # runs at import: a side effect


        def unused():
            return 0
        """,
    "dyn.py": "def loaded():\n    return 3\n",
    "cache.py": """
        def setup():
            global FACTOR
            FACTOR = 2


        def use(x):
            return FACTOR * x
        """,
    "chapter.py": """
        import importlib

        from PKG import sideeffect, tools
        from PKG.cache import use
        from PKG.table import pick


        class Cfg:
            def go(self):
                return 1


        class Other:
            pass


        def run(cfg):
            mod = importlib.import_module("PKG.dyn")
            return getattr(tools, "a")() + pick("first") + cfg.go() + mod.loaded() + use(1)
        """,
}


def test_unclear_code_takes_whole_modules(make_package):
    make_package("fps", {k: textwrap.dedent(v).replace("PKG", "fps") for k, v in CONSERVATIVE_PACKAGE.items()})
    units = set(fingerprint.code_fingerprint("fps.chapter").units)
    # a module used as a value (getattr): all of it
    assert {"fps.tools:a", "fps.tools:b", "fps.tools:os"} <= units
    # a function that reads globals(): its whole module
    assert {"fps.table:first", "fps.table:second", "fps.table:pick"} <= units
    # import_module("literal"): the whole module
    assert "fps.dyn:loaded" in units
    # a module imported at module level: its import-time statements, not its definitions
    assert "fps.sideeffect:<toplevel>" in units and "fps.sideeffect:unused" not in units
    # a name bound only through `global` in another function: that function counts
    assert {"fps.cache:use", "fps.cache:setup"} <= units
    # run's parameter has no annotation: every class of the run module (the config's methods)
    assert {"fps.chapter:Cfg", "fps.chapter:Other"} <= units


def test_import_bindings_are_units(make_package):
    root = make_package("fpi", {"__init__.py": "", "chapter.py": "import math as m\n\ndef run(cfg: float):\n"
                                                                 "    return m.sqrt(cfg)\n"})
    before = fingerprint.code_fingerprint("fpi.chapter")
    assert set(before.units) == {"fpi.chapter:run", "fpi.chapter:m"}
    after = _editor(root, "fpi.chapter")("chapter.py", "import math as m", "import cmath as m")
    assert _changed(before, after) == {"fpi.chapter:m"}  # same code in run, another library behind the name


def test_specvae_chapter_one_reaches_its_code_but_not_report_or_bookkeeping():
    fp = fingerprint.code_fingerprint("specvae.experiments.simpler_is_better")
    units, modules = set(fp.units), set(fp.modules)
    assert {"specvae.experiments.simpler_is_better:run", "specvae.experiments.simpler_is_better:_load",
            "specvae.losses.fft:FFTLoss", "specvae.train:fit", "specvae.models.vae:IRMAEVAE",
            "specvae.metrics.image:ssim", "specvae.data.loaders:load_dataset"} <= units
    # the chapter module's report and benchmark functions are not reached by run
    assert not {"specvae.experiments.simpler_is_better:run_all", "specvae.experiments.simpler_is_better:bench_families",
                "specvae.experiments.simpler_is_better:configs"} & units
    assert "specvae.experiments.simpler_is_better_report" not in modules
    assert not modules & fingerprint.EXCLUDED_MODULES
    assert not [m for m in modules if m.startswith("specvae.bench")]
    # the re-exporting specvae.losses adds its bindings (and import-time code), not every loss
    assert "specvae.losses:FFTLoss" in units and "specvae.losses.focal_frequency:FocalFrequencyLoss" not in units


@pytest.mark.parametrize("package", ["specvae.losses", "specvae.data", "specvae.models", "specvae.metrics"])
def test_name_resolution_agrees_with_dunder_module(package):
    """The code reader finds, for each exported class/function, the definition Python itself says it is."""
    mod = importlib.import_module(package)
    checked = 0
    for name in mod.__all__:
        obj = getattr(mod, name)
        if not (isinstance(obj, type) or inspect.isfunction(obj)) or not obj.__module__.startswith("specvae"):
            continue
        closure = fingerprint._Closure(("specvae",), fingerprint.EXCLUDED_MODULES, fingerprint.EXCLUDED_PACKAGES,
                                       package)
        closure.push("attr", package, name, ())
        closure.run()
        assert f"{obj.__module__}:{obj.__name__}" in closure.units, name
        checked += 1
    assert checked >= 1


def test_run_module_of():
    import functools

    from specvae.experiments import spectral_bias

    assert fingerprint.run_module_of(spectral_bias.run) == "specvae.experiments.spectral_bias"
    assert fingerprint.run_module_of(functools.partial(spectral_bias.run, progress=True)) == \
        "specvae.experiments.spectral_bias"
    fn = type(lambda: 0)(compile("def f(): pass", "<nb>", "exec").co_consts[0], {"__name__": "__main__"})
    assert fingerprint.run_module_of(fn) in (None, getattr(sys.modules["__main__"].__spec__, "name", None))
    assert fingerprint.entry_of(functools.partial(spectral_bias.run)) == ("specvae.experiments.spectral_bias", "run")

    def nested(cfg):
        return cfg

    assert fingerprint.entry_of(nested) == (__name__, None)  # a nested function: the whole module counts


# ----------------------------------------------------------------------------------------------------------
# stored with every result
# ----------------------------------------------------------------------------------------------------------
def test_run_grid_and_save_store_the_fingerprint(make_package, tmp_path):
    _losses_package(make_package, "fpd")
    _write(tmp_path / "src", {"fpd/runs.py": """
        from dataclasses import dataclass

        from fpd.chapter import run as chapter_run


        @dataclass(frozen=True)
        class Cfg:
            x: float
            preset: str = "smoke"


        def run(cfg):
            return chapter_run(cfg)
        """})
    runs = importlib.import_module("fpd.runs")
    store = ResultStore("00_fp_test", root=tmp_path / "results")
    cfg = runs.Cfg(1.0)
    run_grid([cfg], runs.run, store, progress=False)
    code = store.load(cfg)["provenance"]["code"]
    expected = fingerprint.code_fingerprint("fpd.runs")
    assert code == expected.to_record()
    assert code["run_module"] == "fpd.runs" and code["entry"] == "run"
    assert code["units"]["fpd.losses.fft"].keys() == {"FFTLoss", "helper"} and "run" in code["units"]["fpd.chapter"]
    # a direct save: the run module given, or none at all (a chapter without a specvae.experiments module)
    store.save(runs.Cfg(2.0), metrics={"value": 1}, run_module="fpd.chapter")
    assert store.load(runs.Cfg(2.0))["provenance"]["code"]["run_module"] == "fpd.chapter"
    store.save(runs.Cfg(3.0), metrics={"value": 1})
    assert store.load(runs.Cfg(3.0))["provenance"]["code"] is None
    assert fingerprint.check_record(store.load(runs.Cfg(3.0))).state == "unknown"


def test_save_defaults_to_the_chapter_module(tmp_path):
    from specvae.experiments import spectral_bias

    cfg = spectral_bias.configs("smoke")[0]
    store = ResultStore(spectral_bias.CHAPTER, root=tmp_path)
    store.save(cfg, metrics={"x": 1.0})
    code = store.load(cfg)["provenance"]["code"]
    assert code["run_module"] == "specvae.experiments.spectral_bias"
    assert code == fingerprint.code_fingerprint("specvae.experiments.spectral_bias").to_record()
    assert fingerprint.check_record(store.load(cfg)) == fingerprint.CodeState("current")


def test_check_record_current_stale_and_unknown(make_package, tmp_path):
    root = _losses_package(make_package, "fpe")
    record = {"hash": "h", "provenance": {"code": fingerprint.code_fingerprint("fpe.chapter").to_record()}}
    assert fingerprint.check_record(record).state == "current"
    (root / "losses" / "fft.py").write_text((root / "losses" / "fft.py").read_text().replace("* 2", "* 3"))
    state = fingerprint.check_record(record)
    assert state.state == "stale" and state.changed == ("fpe.losses.fft:FFTLoss",)
    # a definition the code did not reach before, and those it no longer reaches
    chapter = root / "chapter.py"
    chapter.write_text(chapter.read_text().replace("from fpe.lazy import thing", "from fpe.unused import "
                                                   "nobody_imports_me as thing"))
    state = fingerprint.check_record(record)
    assert set(state.changed) == {"fpe.chapter:thing", "fpe.losses.fft:FFTLoss", "+fpe.unused:nobody_imports_me",
                                  "-fpe.lazy.impl:thing", "-fpe.lazy:__getattr__", "-fpe.lazy:importlib"}
    gone = {"hash": "g", "provenance": {"code": {**record["provenance"]["code"], "run_module": "fpe.nothing"}}}
    assert fingerprint.check_record(gone).state == "unknown"
    summary = fingerprint.check_records([record, gone], missing=["m"])
    assert summary.line() == ("0 current, 1 stale, 1 unknown (cannot find the source file of the run module "
                              "'fpe.nothing'; a fingerprint needs a module-level run function defined in a .py "
                              "file), 1 not stored")
    assert not summary.ok and summary.changed_units()[0] in state.changed
    assert set(summary.changed_modules()) == {"fpe.chapter", "fpe.lazy", "fpe.lazy.impl", "fpe.losses.fft",
                                              "fpe.unused"}


# ----------------------------------------------------------------------------------------------------------
# declared equivalences
# ----------------------------------------------------------------------------------------------------------
def _declarations(tmp_path: Path, entries: list) -> "code_equivalence.Declarations":
    from specvae.experiments import code_equivalence

    _write(tmp_path / "repo", {"tests/test_proof.py": """
        def test_same_numbers():
            assert 1 == 1


        class TestGroup:
            def test_inside(self):
                assert True


        def helper_not_a_test():
            pass
        """})
    path = tmp_path / "repo" / "book" / "results" / code_equivalence.FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": 1, "declarations": entries}))
    return code_equivalence.load(path, tests_dir=tmp_path / "repo" / "tests")


GOOD = {"chapter": "00_x", "code": {"m:f": {"from": "0" * 16, "to": "1" * 16}}, "reason": "same numbers",
        "evidence": ["tests/test_proof.py::test_same_numbers", "tests/test_proof.py::TestGroup::test_inside[a-1]"]}


@pytest.mark.parametrize("change, problem", [
    ({"reason": None}, "no reason"),
    ({"reason": "   "}, "no reason"),
    ({"evidence": []}, "no evidence"),
    ({"evidence": ["tests/test_missing.py::test_same_numbers"]}, "tests/test_missing.py does not exist"),
    ({"evidence": ["tests/test_proof.py::test_gone"]}, "no test test_gone in tests/test_proof.py"),
    ({"evidence": ["tests/test_proof.py::helper_not_a_test"]}, "no test helper_not_a_test"),
    ({"evidence": ["tests/test_proof.py::TestGroup::test_gone"]}, "no test TestGroup::test_gone"),
    ({"evidence": ["tests/../../etc/test_x.py::test_a"]}, "is not in"),
    ({"evidence": ["test_proof.py::test_same_numbers"]}, "is not a test id"),
    ({"code": {"m:f": {"from": "xyz", "to": "1" * 16}}}, "16 hex digits"),
    ({"code": {"m:f": {"from": "1" * 16, "to": "1" * 16}}}, "from == to"),
    ({"code": {}}, "no code"),
    ({"chapter": ""}, "no chapter"),
    ({"presets": "cpu"}, "presets must be"),
    ({"because": "x"}, "unknown field(s) because"),
])
def test_declarations_without_reason_or_existing_evidence_test_are_refused(tmp_path, change, problem):
    bad = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    declarations = _declarations(tmp_path, [GOOD, bad])
    assert [e.index for e in declarations.entries] == [1]  # the good one only
    assert len(declarations.problems) >= 1 and all("refused declaration #2" in p for p in declarations.problems)
    assert any(problem in p for p in declarations.problems), declarations.problems


def test_declarations_cover_exactly_the_changes_they_name(make_package, tmp_path):
    from specvae.experiments import code_equivalence

    root = _losses_package(make_package, "fpq")
    edit = _editor(root, "fpq.chapter")
    stored = fingerprint.code_fingerprint("fpq.chapter")
    record = {"hash": "h", "chapter": "00_x", "provenance": {"preset": "cpu", "code": stored.to_record()}}
    changed = edit("losses/fft.py", "* 2", "* 2.0")
    fft = {"from": stored.units["fpq.losses.fft:FFTLoss"], "to": changed.units["fpq.losses.fft:FFTLoss"]}
    entry = {**GOOD, "code": {"fpq.losses.fft:FFTLoss": fft}, "presets": ["cpu"], "reason": "2 and 2.0 agree"}

    def check(*entries):
        return fingerprint.check_record(record, declarations=_declarations(tmp_path, list(entries)))

    assert check() == fingerprint.CodeState("stale", ("fpq.losses.fft:FFTLoss",))
    state = check(entry)
    assert state.current and state.declared == ("#1 (2 and 2.0 agree)",)
    assert state.excused == ("fpq.losses.fft:FFTLoss",)
    # another chapter, another preset, another stored hash: not honoured
    assert check({**entry, "chapter": "01_y"}).state == "stale"
    assert check({**entry, "presets": ["gpu"]}).state == "stale"
    assert check({**entry, "code": {"fpq.losses.fft:FFTLoss": {**fft, "from": "f" * 16}}}).state == "stale"
    # a whole-module key: the module's combined hash over the run's units
    module = {"from": fingerprint.module_units(stored.units, "fpq.losses.fft"),
              "to": fingerprint.module_units(changed.units, "fpq.losses.fft")}
    assert check({**entry, "code": {"fpq.losses.fft": module}}).current
    # a later change elsewhere is not covered; a later change of the declared unit voids the declaration
    later = edit("util.py", "x + 1", "x + 3")
    assert later.units["fpq.losses.fft:FFTLoss"] == fft["to"]
    assert check(entry) == fingerprint.CodeState("stale", ("fpq.util:helper",))
    edit("util.py", "x + 3", "x + 1")
    edit("losses/fft.py", "* 2.0", "* 2.5")
    assert check(entry) == fingerprint.CodeState("stale", ("fpq.losses.fft:FFTLoss",))
    # the template names every changed unit, with the hashes a declaration needs
    template = code_equivalence.template("00_x", stored.units, changed.units, presets=["cpu"])
    assert template["code"] == {"fpq.losses.fft:FFTLoss": fft} and template["reason"] == ""
    assert _declarations(tmp_path, [template]).entries == []  # refused until a reason and evidence are given


# ----------------------------------------------------------------------------------------------------------
# backfill from git
# ----------------------------------------------------------------------------------------------------------
def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_backfill_from_a_git_repository_with_two_commits(make_package, tmp_path):
    root = _losses_package(make_package, "fpg")
    repo = tmp_path / "src"
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    first = _git(repo, "rev-parse", "HEAD")
    util = root / "util.py"
    util.write_text(util.read_text().replace("x + 1", "x + 5"))                # code
    unused = root / "unused.py"
    unused.write_text(unused.read_text().replace("return 0", "return 9"))       # not a dependency
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "second")
    second = _git(repo, "rev-parse", "HEAD")
    # the working tree: only a docstring edited since the second commit
    util.write_text('"""Helpers."""\n' + util.read_text())

    def record(commit, dirty=False):
        return {"hash": "h", "chapter": "00_x", "provenance": {"git_commit": commit, "git_dirty": dirty}}

    then = fingerprint.fingerprint_at_commit("fpg.chapter", first)
    now = fingerprint.code_fingerprint("fpg.chapter")
    assert then.units.keys() == now.units.keys()
    assert {u for u in now.units if then.units[u] != now.units[u]} == {"fpg.util:helper"}
    assert fingerprint.fingerprint_at_commit("fpg.chapter", second) == now

    state = fingerprint.check_record(record(first), run_module="fpg.chapter")
    assert state == fingerprint.CodeState("stale", ("fpg.util:helper",), backfilled=True)
    assert fingerprint.check_record(record(second), run_module="fpg.chapter") == \
        fingerprint.CodeState("current", backfilled=True)
    dirty = fingerprint.check_record(record(second, dirty=True), run_module="fpg.chapter")
    assert dirty.state == "unknown" and "uncommitted changes" in dirty.reason
    missing = fingerprint.check_record(record("0" * 40), run_module="fpg.chapter")
    assert missing.state == "unknown" and "not in the repository" in missing.reason
    assert fingerprint.check_record(record(None), run_module="fpg.chapter").state == "unknown"
    # a module the run depends on now that did not exist at the commit
    _write(repo, {"fpg/extra.py": "K = 1\n"})
    (root / "local_dep.py").write_text("from fpg.extra import K\n\ndef inner(x):\n    return -x * K\n")
    state = fingerprint.check_record(record(second), run_module="fpg.chapter")
    assert state.state == "stale" and set(state.changed) == {"+fpg.extra:K", "+fpg.local_dep:K", "fpg.local_dep:inner"}


def test_backfill_of_the_repository_runs_names_real_changes():
    """A stored run made at a clean commit before fingerprints is checked against git (not shown as unknown)."""
    records = [json.loads(p.read_text()) for p in sorted((REPO / "book" / "results").glob("*/*.json"))]
    clean = [r for r in records if r["provenance"].get("git_dirty") is False and not r["provenance"].get("code")
             and fingerprint._has_commit(str(REPO), r["provenance"]["git_commit"])]
    if not clean:
        pytest.skip("no stored run from before fingerprints at a commit of this clone")
    state = fingerprint.check_record(clean[0])
    assert state.backfilled and state.state in ("current", "stale")


# ----------------------------------------------------------------------------------------------------------
# the rerun switch and checkpoints
# ----------------------------------------------------------------------------------------------------------
def test_prepare_rerun_dir_removes_old_checkpoints_but_resumes_a_killed_rerun(tmp_path):
    run_dir = tmp_path / "runs" / "00_x" / "abc"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_text("old code")
    assert fingerprint.prepare_rerun_dir(run_dir, {"fingerprint": "f1"}) is True
    assert not (run_dir / "checkpoint.pt").exists()
    assert json.loads((run_dir / fingerprint.RUN_DIR_MARKER).read_text()) == {"fingerprint": "f1"}
    (run_dir / "checkpoint.pt").write_text("new code, killed half-way")
    assert fingerprint.prepare_rerun_dir(run_dir, {"fingerprint": "f1"}) is False
    assert (run_dir / "checkpoint.pt").read_text() == "new code, killed half-way"
    assert fingerprint.prepare_rerun_dir(run_dir, {"fingerprint": "f2"}) is True
    assert not (run_dir / "checkpoint.pt").exists()


# ----------------------------------------------------------------------------------------------------------
# end to end: a tiny chapter through `specvae run`, `specvae book status` and the banner
# ----------------------------------------------------------------------------------------------------------
TINY_CHAPTER = '''
"""The run module of the tiny fixture chapter (tests/fixtures/book/notebooks/98_tiny_chapter.py)."""
from __future__ import annotations

from dataclasses import dataclass

from specvae.experiments import ResultStore, run_grid, select_preset

CHAPTER = "98_tiny_chapter"


@dataclass(frozen=True)
class Sizes:
    n: int


PRESETS = {"smoke": Sizes(2), "cpu": Sizes(3), "gpu": Sizes(3), "paper": Sizes(3)}


@dataclass(frozen=True)
class RunConfig:
    x: float
    preset: str


def configs(preset, **overrides):
    sizes = select_preset(PRESETS, preset, **overrides)
    return [RunConfig(float(i + 1), preset) for i in range(sizes.n)]


def run(cfg):
    from PKG.core import scale

    run_dir = ResultStore(CHAPTER).run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.txt"
    if checkpoint.exists():      # a finished checkpoint: `fit` would resume from it and not train
        value = float(checkpoint.read_text())
    else:
        value = scale(cfg.x)
        checkpoint.write_text(repr(value))
    return {"metrics": {"value": value}}


def run_all(preset, *, workers=1, train=True, **overrides):
    cfgs = configs(preset, **overrides)
    store = ResultStore(CHAPTER)
    if train:
        run_grid(cfgs, run, store, workers=workers, progress=False)
    return store.frame(cfgs)
'''


@pytest.fixture
def tiny_chapter(make_package, tmp_path, monkeypatch):
    """The tiny chapter with a run module ``specvae.experiments.tiny_chapter`` whose run uses ``fpz.core``;
    a book project at tmp_path/project; results and checkpoints under tmp_path."""
    pkg = make_package("fpz", {"__init__.py": "", "core.py": '"""Core."""\n\ndef scale(x):\n    return 2 * x\n'})
    path = tmp_path / "tiny_chapter.py"
    path.write_text(TINY_CHAPTER.replace("PKG", "fpz"))
    name = "specvae.experiments.tiny_chapter"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    project = tmp_path / "project"
    shutil.copytree(REPO / "tests" / "fixtures" / "book", project)
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    return pkg, project, module


def _declare(project: Path, results: Path, monkeypatch, store: ResultStore, cfg) -> None:
    """Declare the tiny chapter's current code equivalent to its stored runs' (evidence: a test of the project,
    which becomes the project root)."""
    from specvae.experiments import code_equivalence

    (project / "pyproject.toml").write_text("[project]\nname = 'tiny'\n")
    _write(project, {"tests/test_tiny.py": "def test_scale_equivalence():\n    assert 2 * 1 == 2\n"})
    monkeypatch.chdir(project)
    stored = fingerprint.CodeFingerprint.from_record(store.load(cfg)["provenance"]["code"])
    now = fingerprint.code_fingerprint(stored.run_module)
    entry = code_equivalence.template("98_tiny_chapter", stored.units, now.units, presets=["smoke"])
    assert list(entry["code"]) == ["fpz.core:scale"]
    entry.update(reason="a test fixture's declaration", evidence=["tests/test_tiny.py::test_scale_equivalence"])
    (results / code_equivalence.FILE_NAME).write_text(json.dumps({"format": 1, "declarations": [entry]}))


def test_stale_runs_end_to_end(tiny_chapter, tmp_path, capsys, monkeypatch):
    from specvae import book, cli

    pkg, project, module = tiny_chapter
    source = project / "notebooks" / "98_tiny_chapter.py"
    store = ResultStore(module.CHAPTER)
    cfgs = module.configs("smoke")

    def values():
        return [store.load(c)["metrics"]["value"] for c in cfgs]

    def status():
        out = {s.name: s for s in book.check_chapters(project)}["98_tiny_chapter"]
        return out, [out.runs.states[config_hash(c)].state for c in cfgs]

    assert cli.main(["run", "tiny_chapter", "--preset", "smoke"]) == 0
    assert values() == [2.0, 4.0]
    assert "older code" not in capsys.readouterr().err
    st, states = status()
    assert states == ["current", "current"] and st.runs_line() == "runs: 2 stored, 2 current, 0 stale, 0 unknown"
    assert store.load(cfgs[0])["provenance"]["code"]["units"].keys() == {"specvae.experiments.tiny_chapter",
                                                                          "fpz.core"}

    core = pkg / "core.py"
    core.write_text(core.read_text().replace('"""Core."""', '"""Core, documented at length."""  # comment'))
    assert status()[1] == ["current", "current"]
    assert book.banner(preset="smoke", chapter="98_tiny_chapter", source=source, display=False).runs_warning is False

    core.write_text(core.read_text().replace("2 * x", "3 * x"))
    importlib.reload(sys.modules["fpz.core"])  # what a fresh process would load
    st, states = status()
    assert states == ["stale", "stale"] and not st.ok and st.changed_line() == "changed since: fpz.core:scale"
    assert cli.main(["book", "status", "--root", str(project)]) == 1
    out = capsys.readouterr().out
    assert "runs: 2 stored, 0 current, 2 stale, 0 unknown\n    changed since: fpz.core:scale" in out
    assert "specvae run 98 --preset smoke --rerun-stale" in out
    assert any("98_tiny_chapter: runs: 2 stored" in p for p in book.book_problems(project))

    banner = book.banner(preset="smoke", chapter="98_tiny_chapter", source=source, display=False)
    assert banner.runs_warning and banner.runs["stale"] == 2 and banner.runs["changed"] == ["fpz.core"]
    html = banner.to_html()
    assert "admonition warning" in html and "Results from older code" in html
    assert "<code>specvae run 98 --preset smoke --rerun-stale</code>" in html
    assert "2 were trained by code that has changed since (fpz.core)" in banner.to_text().replace("\n    ", " ")

    # a declared equivalence (committed beside the results, evidence in the project's tests) keeps them current
    _declare(project, tmp_path / "results", monkeypatch, store, cfgs[0])
    st, states = status()
    assert states == ["current", "current"] and st.runs_ok
    assert st.runs_line() == "runs: 2 stored, 2 current (2 by declared equivalence), 0 stale, 0 unknown"
    assert st.declared_line() == "declared equivalent (code_equivalence.json): #1 (a test fixture's declaration)"
    cli.main(["book", "status", "--root", str(project)])
    out = capsys.readouterr().out
    assert "2 current (2 by declared equivalence)" in out and "--rerun-stale" not in out
    assert cli.main(["run", "tiny_chapter", "--preset", "smoke", "--rerun-stale"]) == 0
    assert "retrained" not in capsys.readouterr().err and values() == [2.0, 4.0]
    assert not book.banner(preset="smoke", chapter="98_tiny_chapter", source=source, display=False).runs_warning
    # ... until its evidence test is gone: the entry is refused, said so, and the runs are stale again
    (project / "tests" / "test_tiny.py").write_text("def test_other():\n    assert 1 + 1 == 2\n")
    (tmp_path / "results" / "code_equivalence.json").touch()  # (a new mtime: the file is read again)
    assert status()[1] == ["stale", "stale"]
    assert cli.main(["book", "status", "--root", str(project)]) == 1
    out = capsys.readouterr().out
    assert ("code_equivalence.json: refused declaration #1: evidence 'tests/test_tiny.py::test_scale_equivalence':"
            " no test test_scale_equivalence in tests/test_tiny.py") in out
    assert any("refused declaration #1" in p for p in book.book_problems(project))
    (tmp_path / "results" / "code_equivalence.json").unlink()

    # `specvae run` reuses them and says so
    assert cli.main(["run", "tiny_chapter", "--preset", "smoke"]) == 0
    err = capsys.readouterr().err
    assert "reused 2 stored run(s) of older code: 0 current, 2 stale, 0 unknown; changed since: fpz.core" in err
    assert "--rerun-stale" in err and values() == [2.0, 4.0]

    # --rerun-stale retrains them with the new code (the old checkpoints are not resumed)
    assert cli.main(["run", "tiny_chapter", "--preset", "smoke", "--rerun-stale"]) == 0
    err = capsys.readouterr().err
    assert "retrained 2 run(s) whose code was stale or unknown" in err and "reused" not in err
    assert values() == [3.0, 6.0]
    assert status()[1] == ["current", "current"]
    assert book.banner(preset="smoke", chapter="98_tiny_chapter", source=source, display=False).runs_warning is False


def test_build_rechecks_the_runs_a_banner_recorded(tiny_chapter, monkeypatch):
    """The Sphinx handler turns an executed chapter's banner into a warning when its runs went stale later."""
    from specvae import book

    pkg, project, module = tiny_chapter
    source = project / "notebooks" / "98_tiny_chapter.py"
    module.run_all("smoke")
    banner = book.banner(preset="smoke", chapter="98_tiny_chapter", source=source, display=False)
    assert banner.runs["current"] == 2 and not banner.runs_warning
    data, metadata = banner._display_bundle()
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "display_data", "data": data, "metadata": metadata}]}]}
    executed = project / "book" / "98_tiny_chapter.ipynb"
    executed.parent.mkdir(exist_ok=True)

    class App:
        srcdir = str(project)

        class env:
            @staticmethod
            def doc2path(docname):
                return str(executed)

    source = [json.dumps(nb)]
    book._mark_stale(App, "book/98_tiny_chapter", source)
    assert "Results from older code" not in source[0]  # nothing changed: left alone
    core = pkg / "core.py"
    core.write_text(core.read_text().replace("2 * x", "2 * x + 1"))
    book._mark_stale(App, "book/98_tiny_chapter", source)
    html = json.loads(source[0])["cells"][0]["outputs"][0]["data"]["text/html"]
    assert "Results from older code" in html and 'data-specvae-stale-runs="true"' in html
