"""Per-run sections: the hyperparameters of every finished run, and the failed and unfinished
runs (listed for reference, left out of every statistic)."""

from __future__ import annotations

from clipgap.record import RunRecord
from clipgap.report.formats.blocks import Block, Heading, Paragraph, Table
from clipgap.report.formatting import MISSING, integer, num
from clipgap.report.labels import method_label, order_arms, shots_text
from clipgap.report.study import Study

# (key of the run's training config, header)
HYPERPARAMETERS = (("optimizer", "optimizer"), ("lr", "lr"), ("batch_size", "batch"))


def runs_section(study: Study) -> list[Block]:
    """The hyperparameters of every finished run, from its resolved training config."""
    head = [
        "run", "task", "method", "seed", "preset", "shots", "status", "optimizer", "lr", "batch",
        "epochs", "best epoch", "val accuracy (start → best)",
    ]  # fmt: skip
    rank = {method: i for i, method in enumerate(order_arms(r.method for r in study.records))}
    records = sorted(study.records, key=lambda r: (r.task, rank[r.method], r.seed, r.run_id))
    rows = [_run_row(rec) for rec in records]
    return [
        Heading("Runs and hyperparameters"),
        Paragraph(
            "Every finished run, with the training settings of its resolved config "
            f"(`config.train`; {MISSING} = not recorded). The best epoch is the trained epoch "
            "chosen on validation accuracy; the last column shows the validation accuracy of "
            "the starting model and of the best epoch."
        ),
        Table(head, rows, align=["l"] * 3 + ["r"] + ["l"] * 4 + ["r"] * 5),
    ]


def _run_row(rec: RunRecord) -> list[str]:
    train = rec.config.get("train") if isinstance(rec.config, dict) else None
    train = train if isinstance(train, dict) else {}
    settings = [_setting(train.get(key)) for key, _ in HYPERPARAMETERS]
    val = f"{num(rec.val_accuracy_start)} → {num(rec.val_accuracy)}" if rec.complete else MISSING
    return [
        f"`{rec.run_id}`",
        f"`{rec.task}`",
        method_label(rec.method),
        str(rec.seed),
        rec.preset,
        shots_text(rec.shots),
        rec.status,
        *settings,
        _setting(train.get("epochs")),
        integer(rec.best_epoch),
        val,
    ]


def _setting(value) -> str:
    """A config value as written: numbers in their shortest form (``0.0003``, ``1e-06``)."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def failed_section(study: Study) -> list[Block]:
    blocks: list[Block] = [Heading("Failed runs")]
    if not study.failed:
        blocks.append(Paragraph("None."))
    else:
        rows = [
            [f"`{r.run_id}`", f"`{r.task}`", method_label(r.method), str(r.seed), r.error or ""]
            for r in study.failed
        ]
        blocks.append(Paragraph("Listed for reference; left out of every table and statistic."))
        blocks.append(Table(["run", "task", "method", "seed", "error"], rows, align=["l"] * 5))
    if study.unfinished:
        names = ", ".join(f"`{n}`" for n in study.unfinished)
        blocks.append(Paragraph(f"Run directories without `DONE` (skipped): {names}."))
    return blocks
