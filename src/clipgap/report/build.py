"""``build_report``: a study's run records in, ``STUDY_DIR/report/`` out. Never loads a model.

Writes ``results.csv`` (one row per finished run), ``results_long.csv`` and
``results_long.parquet`` (one row per complete run x metric x dataset, see
:func:`clipgap.report.tables.long_results`), ``report.md``, a self-contained ``report.html`` and
``figures/*.png``. Same records in, byte-identical ``report.md`` out.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pandas as pd

from clipgap.errors import ConfigError
from clipgap.paths import atomic_write_bytes, atomic_write_text
from clipgap.report.analysis import analyse
from clipgap.report.claims import ClaimOptions
from clipgap.report.study import load_study
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
    from clipgap.report.figures import draw_figures
    from clipgap.report.formats import to_html, to_markdown
    from clipgap.report.sections.document import document

    study = load_study(study_dir)
    out = Path(out_dir) if out_dir is not None else study.root / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create report directory {out}: {exc.strerror}") from None
    analysis = analyse(study, options)
    write_tables(analysis.results, long_results(study), out)
    plots = draw_figures(analysis, out / "figures")
    blocks = document(study, analysis, plots, figures="figures")
    atomic_write_text(out / "report.md", to_markdown(blocks))
    title = f"clipgap study report: {study.name}"
    atomic_write_text(out / "report.html", to_html(blocks, base=out, title=title))
    log.info("wrote report of %d runs to %s", len(study.records), out)
    return out / "report.md"


def write_tables(frame: pd.DataFrame, long: pd.DataFrame, out: Path) -> None:
    """``results.csv`` (wide), ``results_long.csv`` and ``results_long.parquet`` (long)."""
    atomic_write_text(out / "results.csv", frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "results_long.csv", long.to_csv(index=False, lineterminator="\n"))
    buffer = io.BytesIO()
    long.to_parquet(buffer, index=False, engine="pyarrow")
    atomic_write_bytes(out / "results_long.parquet", buffer.getvalue())
