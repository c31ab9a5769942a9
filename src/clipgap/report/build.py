"""``build_report``: a study's run records in, ``STUDY_DIR/report/`` out. Never loads a model.

Writes ``results.csv`` (one row per finished run), ``report.md``, a self-contained
``report.html`` and ``figures/*.png``. Same records in, byte-identical ``report.md`` out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clipgap.errors import ConfigError
from clipgap.paths import atomic_write_text
from clipgap.report.analysis import analyse
from clipgap.report.claims import ClaimOptions
from clipgap.report.study import load_study

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
    from clipgap.report.render import to_html, to_markdown
    from clipgap.report.render.plots import make_plots
    from clipgap.report.render.sections import document

    study = load_study(study_dir)
    out = Path(out_dir) if out_dir is not None else study.root / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create report directory {out}: {exc.strerror}") from None
    analysis = analyse(study, options)
    atomic_write_text(out / "results.csv", analysis.frame.to_csv(index=False, lineterminator="\n"))
    plots = make_plots(analysis, out / "figures")
    blocks = document(study, analysis, plots, figures="figures")
    atomic_write_text(out / "report.md", to_markdown(blocks))
    title = f"clipgap study report: {study.name}"
    atomic_write_text(out / "report.html", to_html(blocks, base=out, title=title))
    log.info("wrote report of %d runs to %s", len(study.records), out)
    return out / "report.md"
