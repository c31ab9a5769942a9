"""``build_report``: a study's run records in, ``STUDY_DIR/report/`` out. Never loads a model.

Writes ``results.csv`` (one row per finished run), ``report.md``, a self-contained
``report.html`` and ``figures/*.png``. Same records in, byte-identical ``report.md`` out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clipgap.errors import ConfigError
from clipgap.paths import atomic_write_text
from clipgap.report import tables
from clipgap.report.claims import evaluate_claims
from clipgap.report.records import Study, load_study
from clipgap.report.relations import relation_table
from clipgap.report.verdicts import Claim, ClaimOptions

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    """Everything the report shows, computed from the results frame (see :mod:`tables`)."""

    frame: pd.DataFrame
    difficulty: pd.DataFrame
    cells: pd.DataFrame
    methods: pd.DataFrame
    means: pd.DataFrame
    relations: pd.DataFrame
    forgetting: pd.DataFrame
    claims: list[Claim]
    alpha: float


def analyse(study: Study, options: ClaimOptions | None = None) -> Analysis:
    """Tables, difficulty/outcome statistics and claim verdicts of a loaded study."""
    options = options or ClaimOptions()
    frame = tables.results_frame(study)
    difficulty = tables.difficulty_table(frame)
    cells = tables.cell_table(frame)
    means = tables.task_means(cells, difficulty)
    relations = relation_table(cells, means, difficulty, alpha=options.alpha)
    return Analysis(
        frame=frame,
        difficulty=difficulty,
        cells=cells,
        methods=tables.method_table(frame, cells),
        means=means,
        relations=relations,
        forgetting=tables.forgetting_table(frame),
        claims=evaluate_claims(relations, cells, options),
        alpha=options.alpha,
    )


def build_report(
    study_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    options: ClaimOptions | None = None,
) -> Path:
    """Build the report of the study in ``study_dir``; return the path of ``report.md``.

    ``out_dir`` defaults to ``study_dir/report``. Run directories without ``DONE`` are skipped;
    failed runs are listed but left out of every statistic.
    """
    from clipgap.report.plots import make_plots
    from clipgap.report.render import to_html, to_markdown
    from clipgap.report.sections import document

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
