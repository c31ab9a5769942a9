"""``build_report``: a study's run records in, ``STUDY_DIR/report/`` out. Never loads a model.

Writes ``results.csv`` (one row per finished run), ``results_long.csv`` and
``results_long.parquet`` (one row per complete run x metric x dataset, see
:func:`clipgap.report.tables.long_results`), ``report.md``, a self-contained ``report.html`` and
``figures/*.png``. Same records in, byte-identical ``report.md`` out. The report is written to a
temporary sibling folder and renamed into place: a failure leaves the previous report (or none).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd

from clipgap.errors import ConfigError
from clipgap.paths import atomic_dir, atomic_write_bytes, atomic_write_text
from clipgap.report.analysis import analyse
from clipgap.report.claims import ClaimOptions
from clipgap.report.study import Study, load_study
from clipgap.report.tables import long_results

log = logging.getLogger(__name__)


def build_report(
    study_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    options: ClaimOptions | None = None,
) -> Path:
    """Build the report of the study in ``study_dir``; return the path of ``report.md``.

    ``out_dir`` defaults to ``study_dir/report``. Run directories without the completion marker
    are skipped; failed runs are listed but left out of every statistic.
    """
    return build_report_analysis(study_dir, out_dir, options=options)[0]


def build_report_analysis(study_dir, out_dir=None, *, options: ClaimOptions | None = None):
    """:func:`build_report`, returning also the analysis the report shows (for ``--json``)."""
    from clipgap.report.figures import draw_figures
    from clipgap.report.formats import to_html, to_markdown
    from clipgap.report.sections.document import document

    study = load_study(study_dir)
    out = Path(out_dir) if out_dir is not None else study.root / "report"
    _check_report_dir(out)
    models = sorted({r.model for r in study.records})
    with atomic_dir(out, replace=True) as tmp:  # the whole report, or the previous one
        if len(models) == 1:
            analysis = analyse(study, options)
            write_tables(analysis.results, long_results(study), tmp)
            plots = draw_figures(analysis, tmp / "figures")
            blocks = document(study, analysis, plots, figures="figures")
        else:
            blocks, analysis = _several_models(study, models, options, tmp)
        atomic_write_text(tmp / "report.md", to_markdown(blocks))
        title = f"clipgap study report: {study.name}"
        atomic_write_text(tmp / "report.html", to_html(blocks, base=tmp, title=title))
    log.info("wrote report of %d runs to %s", len(study.records), out)
    return out / "report.md", analysis


def _several_models(study: Study, models: list[str], options, tmp: Path) -> tuple[list, dict]:
    """The report of a study over several models: the whole report body of each model's runs
    (headed by the model, figures in ``figures/model-<i>/``), then the cross-model section;
    and each model's analysis, by model."""
    from dataclasses import replace

    from clipgap.report.dial import dial_analysis
    from clipgap.report.figures import draw_figures
    from clipgap.report.formats.blocks import Heading
    from clipgap.report.sections.document import document
    from clipgap.report.sections.models import cross_model_section, plot_dial
    from clipgap.report.tables import results_frame

    blocks: list = [Heading(f"clipgap study report: {study.name}", 1)]
    analyses = {}
    for i, model in enumerate(models):
        part = replace(study, records=[r for r in study.records if r.model == model])
        analysis = analyses[model] = analyse(part, options)
        folder = f"figures/model-{i}"
        plots = draw_figures(analysis, tmp / folder)
        body = document(part, analysis, plots, figures=folder)[1:]
        blocks.append(Heading(f"Model `{model}`", 2))
        blocks += [replace(b, level=b.level + 1) if isinstance(b, Heading) else b for b in body]
    write_tables(results_frame(study), long_results(study), tmp)
    dial = dial_analysis(study.complete)
    plot = plot_dial(dial, tmp / "figures")
    return blocks + cross_model_section(models, dial, plot, figures="figures"), analyses


# What a report directory holds; a directory holding anything else is not replaced.
REPORT_NAMES = {"report.md", "report.html", "results.csv", "results_long.csv"}
REPORT_NAMES |= {"results_long.parquet", "figures"}


def _ours(name: str) -> bool:
    """A report file, or a temporary file an interrupted write of one left."""
    return name in REPORT_NAMES or (name.startswith(".") and ".tmp-" in name)


def _check_report_dir(out: Path) -> None:
    """ConfigError when ``out`` is a file, or a folder holding what is not a report's (the
    report replaces the whole folder)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"report directory {out} is a file; choose a folder")
    other = sorted(p.name for p in out.iterdir() if not _ours(p.name)) if out.is_dir() else []
    if other:
        raise ConfigError(
            f"report directory {out} holds files that are not a report's ({', '.join(other[:3])}"
            f"{', ...' if len(other) > 3 else ''}); choose a new or empty folder"
        )


def write_tables(frame: pd.DataFrame, long: pd.DataFrame, out: Path) -> None:
    """``results.csv`` (wide), ``results_long.csv`` and ``results_long.parquet`` (long)."""
    atomic_write_text(out / "results.csv", frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "results_long.csv", long.to_csv(index=False, lineterminator="\n"))
    buffer = io.BytesIO()
    long.to_parquet(buffer, index=False, engine="pyarrow")
    atomic_write_bytes(out / "results_long.parquet", buffer.getvalue())
