"""Tests of the notebook → book pipeline (specvae.book).

A tiny fixture chapter (tests/fixtures/book/notebooks/98_tiny_chapter.py) is executed by papermill through
``specvae book execute`` with non-default parameters into a temporary copy of a project that uses the real
``_config.yml`` and ``book/references.bib``; the book is then built with jupyter-book and its HTML inspected.
The real repository's config and toc are built too (with whatever chapters exist).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from specvae import book
from specvae.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "book"
CHAPTER = "98_tiny_chapter"


def _make_project(dest: Path) -> Path:
    """A tmp book project: the fixture chapter, toc and intro + the repository's real _config.yml and bib."""
    shutil.copytree(FIXTURE, dest)
    shutil.copy(REPO / "_config.yml", dest / "_config.yml")
    (dest / "book").mkdir(exist_ok=True)
    shutil.copy(REPO / "book" / "references.bib", dest / "book" / "references.bib")
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The fixture project with the tiny chapter executed (scale=7.5, label=hello-param, preset cpu)."""
    root = _make_project(tmp_path_factory.mktemp("book") / "project")
    rc = cli_main(["book", "execute", "98", "--root", str(root), "--preset", "cpu",
                   "-p", "scale", "7.5", "-p", "label", "hello-param", "-q"])
    assert rc == 0
    return root


@pytest.fixture(scope="module")
def built(project: Path) -> Path:
    """The fixture project's HTML (built once for the module)."""
    html = book.build_book(project, quiet=True)
    assert html == project / "_build" / "html"
    return html


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def _text(output: dict) -> str:
    if "text" in output:
        return "".join(output["text"])
    return "".join(output.get("data", {}).get("text/plain", ""))


# ----------------------------------------------------------------------------------------------- execution
def test_parameters_take_effect_in_the_executed_chapter(project):
    nb = json.loads((project / "book" / f"{CHAPTER}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["papermill"]["input_path"] == f"notebooks/{CHAPTER}.py"
    assert nb["metadata"]["papermill"]["output_path"] == f"book/{CHAPTER}.ipynb"
    assert nb["metadata"]["papermill"]["parameters"] == {"scale": 7.5, "label": "hello-param", "preset": "cpu"}
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1
    assert "hide-input" in injected[0]["metadata"]["tags"]  # collapsed in the book, not shown twice
    texts = [_text(o) for o in _outputs(nb)]
    # the chapter printed the parameters it saw, and its table was computed from scale = 7.5
    assert "sentinel: scale=7.5 label=hello-param preset=cpu\nkernel: " + sys.executable + "\n" in texts
    table = next(o for o in _outputs(nb) if o["output_type"] == "execute_result")
    values = re.findall(r"<td>([0-9.]+)</td>", "".join(table["data"]["text/html"]))
    assert values == ["1", "7.5", "2", "15.0", "3", "22.5"]
    # the figure reached the notebook even though the tests run with MPLBACKEND=Agg
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb))


def test_banner_records_provenance_once(project):
    nb_path = project / "book" / f"{CHAPTER}.ipynb"
    record = book.find_banner(nb_path)
    assert record is not None
    source = project / "notebooks" / f"{CHAPTER}.py"
    assert record.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record.chapter == CHAPTER and record.preset == "cpu"
    assert record.source == f"notebooks/{CHAPTER}.py"
    assert record.device and record.date.endswith("UTC")
    nb = json.loads(nb_path.read_text())
    banners = [o for o in _outputs(nb) if book.BANNER_KEY in o.get("metadata", {})]
    assert len(banners) == 1  # the value returned by banner() is not displayed a second time
    assert "specvae chapter 98_tiny_chapter" in _text(banners[0])
    banner_cell = next(c for c in nb["cells"] if banners[0] in c.get("outputs", []))
    assert "remove-input" in banner_cell["metadata"]["tags"]  # the book shows the box, not the call
    status = {s.name: s for s in book.check_chapters(project)}
    assert status[CHAPTER].state == "ok"


def test_failed_run_leaves_the_executed_chapter_untouched(project):
    target = project / "book" / f"{CHAPTER}.ipynb"
    before = target.read_bytes()
    with pytest.raises(book.ChapterExecutionError) as err:
        book.execute_chapter(CHAPTER, "cpu", {"fail": True}, root=project, progress=False)
    message = str(err.value)
    assert "RuntimeError" in message and "fixture failure requested" in message and "left as it was" in message
    assert target.read_bytes() == before
    failed = project / "_build" / "failed" / f"{CHAPTER}.ipynb"
    assert failed.is_file()
    assert not list((project / "book").glob(".*partial*"))  # no temporary file left behind
    assert not list((project / "_build" / "executing").iterdir())


def test_unknown_parameter_and_chapter_are_errors(project):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['scael'\].*\['preset', 'scale', 'label', 'fail'\]"):
        book.execute_chapter(CHAPTER, None, {"scael": 2}, root=project)
    with pytest.raises(ValueError, match="unknown chapter '42'. Available chapters: 98_tiny_chapter"):
        book.resolve_chapter("42", project)


def test_move_into_place_across_file_systems(tmp_path, monkeypatch):
    src, dst = tmp_path / "a" / "x.ipynb", tmp_path / "b" / "x.ipynb"
    src.parent.mkdir(), dst.parent.mkdir()
    src.write_text("new"), dst.write_text("old")
    real_replace = os.replace
    calls = []

    def replace(a, b):  # the first rename fails as it would across file systems (EXDEV)
        calls.append((Path(a).parent.name, Path(b).parent.name))
        if len(calls) == 1:
            raise OSError(18, "Invalid cross-device link")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    book._move_into_place(src, dst)
    assert dst.read_text() == "new" and not src.exists()
    assert calls == [("a", "b"), ("b", "b")]  # staged beside the destination, then renamed over it
    assert sorted(p.name for p in dst.parent.iterdir()) == ["x.ipynb"]


@pytest.mark.parametrize("name", ["98", "98_tiny_chapter", "tiny_chapter", "notebooks/98_tiny_chapter.py",
                                  "98_tiny_chapter.ipynb"])
def test_chapter_names(project, name):
    chapter = book.resolve_chapter(name, project)
    assert chapter.name == CHAPTER
    assert chapter.source == project / "notebooks" / f"{CHAPTER}.py"
    assert chapter.executed == project / "book" / f"{CHAPTER}.ipynb"
    assert chapter.module == "specvae.experiments.tiny_chapter"


@pytest.mark.parametrize(
    "text, value",
    [("3", 3), ("-2", -2), ("1e-4", 1e-4), ("0.5", 0.5), ("true", True), ("False", False), ("none", None),
     ("cpu", "cpu"), ("[1, 2]", [1, 2]), ("{a: 1}", {"a": 1}), ("faces64", "faces64")],
)
def test_parse_param_value(text, value):
    parsed = book.parse_param_value(text)
    assert parsed == value and type(parsed) is type(value)


# --------------------------------------------------------------------------------------------------- build
def test_book_html_has_table_figure_banner_and_offline_math(built):
    page = (built / "book" / f"{CHAPTER}.html").read_text()
    for cell in ("<td>7.5</td>", "<td>15.0</td>", "<td>22.5</td>"):
        assert cell in page
    images = re.findall(r'<img[^>]*src="([^"]+\.png)"', page)
    assert images and all((built / "book" / src).resolve().is_file() for src in images)
    assert 'class="admonition note specvae-banner" data-specvae-stale="false"' in page
    assert "Provenance of this chapter: 98_tiny_chapter" in page
    assert "banner(preset=preset)" not in page  # the call itself is hidden; the parameters cells are shown
    assert "scale</span> <span class=\"o\">=</span> <span class=\"mf\">7.5</span>" in page
    intro = (built / "intro.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*)"', intro)
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    assert mathjax == ["_static/mathjax/tex-chtml.js"], scripts
    assert (built / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert not [s for s in scripts if s.startswith(("http:", "https:", "//"))]
    # every page announces that the toc's 97_missing_chapter is not in this build
    assert "Not in this build (not executed or missing): 97_missing_chapter" in intro
    assert r"\mathcal{L} = (1-\alpha)\,\mathcal{L}_s" in intro  # the math is there for MathJax to typeset


def test_missing_toc_entry_is_named_and_strict_refuses(built, project, capsys):
    # `built` ran the plain build, which left the missing chapter out; run the status and a strict build
    with pytest.raises(book.BookBuildError, match="book/97_missing_chapter"):
        book.build_book(project, strict=True, quiet=True)
    err = capsys.readouterr().err
    assert "book/97_missing_chapter: listed in _toc.yml but the file does not exist" in err
    toc, missing = book.available_toc(project)
    assert missing == ["book/97_missing_chapter"]
    assert book.toc_files(project / "_build" / "_toc.available.yml") == ["intro", f"book/{CHAPTER}"]


def test_stale_chapter_is_flagged(project, tmp_path, capsys):
    copy = tmp_path / "stale"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("_build"))
    source = copy / "notebooks" / f"{CHAPTER}.py"
    source.write_text(source.read_text() + "\n# an edit after the chapter was executed\n")
    status = {s.name: s for s in book.check_chapters(copy)}[CHAPTER]
    assert status.state == "stale" and "STALE" in status.message()
    html = book.build_book(copy, quiet=True)
    err = capsys.readouterr().err
    assert f"{CHAPTER}: STALE" in err
    page = (html / "book" / f"{CHAPTER}.html").read_text()
    assert 'data-specvae-stale="true"' in page and "STALE chapter" in page
    assert "Stale (source changed after execution): 98_tiny_chapter" in page
    # the stored notebook itself is not rewritten by the build
    assert book.find_banner(copy / "book" / f"{CHAPTER}.ipynb").stale is False
    with pytest.raises(book.BookBuildError, match="STALE"):
        book.build_book(copy, strict=True, quiet=True)


def test_prune_toc_keeps_existing_entries(tmp_path):
    (tmp_path / "book").mkdir()
    for name in ("intro.md", "a.md", "c.ipynb"):
        (tmp_path / "book" / name).write_text("# x\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n"
        "  - caption: One\n    chapters:\n      - file: book/a\n        sections:\n          - file: book/b\n"
        "      - file: book/c\n"
        "  - caption: Two\n    chapters:\n      - file: book/d\n"
    )
    toc, missing = book.available_toc(tmp_path)
    assert missing == ["book/b", "book/d"]
    assert toc["parts"] == [{"caption": "One", "chapters": [{"file": "book/a"}, {"file": "book/c"}]}]


def test_banner_outside_a_notebook_prints_and_hashes(capsys):
    source = FIXTURE / "notebooks" / f"{CHAPTER}.py"
    record = book.banner(preset="smoke", chapter=CHAPTER, source=source)
    out = capsys.readouterr().out
    assert out.startswith(f"specvae chapter {CHAPTER}") and "preset       smoke" in out
    assert record.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    record.stale = True
    assert "STALE" in record.to_text() and "admonition warning" in record.to_html()
    assert book.Banner.from_dict(record.to_dict()) == record


def test_banner_runs_warning_and_old_banners(capsys):
    record = book.banner(preset="smoke", chapter=CHAPTER, source=FIXTURE / "notebooks" / f"{CHAPTER}.py",
                         display=False)
    assert record.runs is None  # the fixture chapter has no run module: nothing to check, no warning
    old = {k: v for k, v in record.to_dict().items() if k != "runs"}  # a banner stored before run checks
    assert book.Banner.from_dict(old) == record and not record.runs_warning
    assert "runs" not in record.to_text() and "admonition note" in record.to_html()
    record.runs = {"total": 3, "current": 1, "stale": 1, "unknown": 1, "missing": 1, "changed": ["specvae.train"],
                   "unknown_reasons": ["made with uncommitted changes"],
                   "line": "1 current, 1 stale, 1 unknown (made with uncommitted changes), 1 not stored"}
    text = " ".join(record.to_text().split())
    assert ("WARNING: Of the 4 runs this chapter uses, 1 were trained by code that has changed since (specvae.train) "
            "and 1 by code that cannot be checked (made with uncommitted changes). Retrain them with `specvae run 98 "
            "--preset smoke --rerun-stale`") in text
    assert "runs 4 used: 1 current, 1 stale, 1 unknown" in text
    html = record.to_html()
    assert "admonition warning" in html and 'data-specvae-stale-runs="true"' in html
    assert "Results from older code" in html and "<code>specvae run 98 --preset smoke --rerun-stale</code>" in html
    assert book.Banner.from_dict(record.to_dict()) == record


# ---------------------------------------------------------------------------------------- the real book
def test_real_repository_book_builds(tmp_path, capsys):
    html = book.build_book(REPO, output_dir=tmp_path, quiet=True)
    err = capsys.readouterr().err
    for page in ("book/intro.html", "book/reproducibility.html", "book/bibliography.html", "index.html"):
        assert (html / page).is_file(), page
    intro = (html / "book" / "intro.html").read_text()
    # the citation of Björk et al. links to its entry on the bibliography page
    assert re.search(r'<a class="reference internal" href="bibliography.html#id\d+" title="Sara Björk, Jonas '
                     r'Nordhaug Myhre, and Thomas Haugland Johansen. Simpler is better', intro)
    assert re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', intro) == ["../_static/mathjax/tex-chtml.js"]
    assert "cdn.jsdelivr" not in intro and "executablebooks/jupyter-book" not in intro
    # every toc entry is either built or named loudly as missing
    for doc in book.toc_files(REPO / "_toc.yml"):
        if not (html / f"{doc}.html").is_file():
            assert f"{doc}: listed in _toc.yml but the file does not exist" in err, doc
    bib = (html / "book" / "bibliography.html").read_text()
    assert "catch missing details" in bib.lower() and "frequency-quantized variational autoencoder" in bib.lower()


# ------------------------------------------------------------------------------------------- references
def _bib():
    import pybtex.database

    return pybtex.database.parse_file(str(REPO / "book" / "references.bib"))


def test_references_bib_entries_are_complete():
    db = _bib()
    for key in ("bjork2022simpler", "lin2023catch", "feng2025frequency", "kingma2014auto", "jing2020implicit",
                "durall2020watch", "czolbe2020loss", "jiang2021focal", "chandrasegaran2021closer",
                "rahaman2019spectral", "tancik2020fourier", "odena2016deconvolution", "esser2021taming",
                "vandenoord2017neural", "wang2004image", "zhang2018unreasonable", "heusel2017gans",
                "parmar2022aliased", "zheng2023online", "takida2022sqvae", "takida2024hqvae", "rao2021global",
                "tatsunami2024fft"):
        assert key in db.entries, key
    for key, entry in db.entries.items():
        fields = entry.fields
        venue = fields.get("booktitle") or fields.get("journal") or fields.get("institution") or fields.get("eprint")
        assert entry.persons.get("author") and fields.get("title") and venue, key
        assert re.fullmatch(r"(19|20)\d\d", fields["year"]), key
        assert re.fullmatch(r"[a-z]+\d{4}[a-z]+", key), f"{key}: keys are firstauthorYEARword"
        if "doi" in fields:
            assert re.fullmatch(r"10\.\d{4,5}/\S+", fields["doi"]), key
    # the three reproduced papers, as printed on their first pages
    assert db.entries["bjork2022simpler"].fields["doi"] == "10.1109/ICASSP43922.2022.9746027"
    assert db.entries["feng2025frequency"].fields["doi"] == "10.32604/cmc.2025.060252"
    assert db.entries["lin2023catch"].fields["pages"] == "1736--1745"


def test_every_cited_key_is_in_references_bib():
    keys = set(_bib().entries)
    texts = [p.read_text(encoding="utf-8") for p in (REPO / "notebooks").glob("*.py")]
    texts += [p.read_text(encoding="utf-8") for p in (REPO / "book").glob("*.md")]
    texts += [p.read_text(encoding="utf-8") for p in (REPO / "book").glob("*.ipynb")]
    cited = {k.strip() for t in texts for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", t)
             for k in group.split(",")}
    assert cited, "no citations found at all: the pattern is broken"
    assert not cited - keys, f"cited but missing from book/references.bib: {sorted(cited - keys)}"


# ------------------------------------------------------------------------------------------------ README
def _readme_blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def test_readme_has_exactly_two_setup_commands_and_the_makefile_has_them():
    setup = _readme_blocks("bash")[0]
    commands = [ln.split("#")[0].strip() for ln in setup.splitlines() if ln.split("#")[0].strip()]
    assert commands == ["make book", "make test"]
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^book:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "specvae book build" in makefile


def test_readme_python_example_runs():
    (block,) = _readme_blocks("python")
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # every import the README shows exists
    import torch

    x = torch.rand(2, 1, 16, 16)
    assert namespace["FFTLoss"]()(x, x).item() == 0.0


# ------------------------------------------------------------------------------------- chapter conventions
def _chapter_sources() -> list[Path]:
    return [c.source for c in book.list_chapters(REPO)]


@pytest.mark.parametrize("source", _chapter_sources(), ids=lambda p: p.stem)
def test_chapter_follows_the_book_conventions(source):
    """Each chapter has a ``parameters`` cell with ``preset``, then calls the banner with its own name."""
    nb = book.notebook_from_source(source)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source.name}: needs exactly one cell tagged 'parameters'"
    assert re.search(r"^preset\s*=", code[tagged[0]].source, re.M), f"{source.name}: no `preset = ...` parameter"
    after = code[tagged[0] + 1].source
    assert "banner(" in after, f"{source.name}: the cell after the parameters must call specvae.book.banner"
    assert f'chapter="{source.stem}"' in after.replace("'", '"'), \
        f"{source.name}: pass chapter={source.stem!r} to banner() so plain papermill runs record the right source"
    assert "preset=preset" in after.replace(" ", ""), f"{source.name}: pass preset=preset to banner()"
