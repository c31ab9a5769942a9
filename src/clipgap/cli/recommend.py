"""``clipgap recommend``: which PEFT method to pick for a new task, from its difficulty and a study."""

from __future__ import annotations

import math

from clipgap.cli.commands import commands
from clipgap.cli.common import (
    add_batch_size_arg,
    add_data_args,
    add_device_arg,
    add_json_arg,
    add_model_args,
    add_output_args,
    add_task_args,
    data_options,
    pretrain_world_first,
)
from clipgap.cli.output import emit_json, say, table


def add_nested_args(p) -> None:
    """Flags of the nested leave-one-task-out procedure (also used by ``clipgap report``)."""
    p.add_argument(
        "--measures", default=None, metavar="M1,M2",
        help="measures the procedure may choose among (default: every recorded measure)",
    )  # fmt: skip
    p.add_argument(
        "--permutations", default="1000", metavar="N",
        help="shuffles of the difficulty values for the permutation p-value (>= 100; default 1000)",
    )  # fmt: skip
    p.add_argument(
        "--combine", type=int, default=2, choices=(1, 2, 3),
        help="most measures one predictor uses (2-3: ridge over them; default 2)",
    )  # fmt: skip
    p.add_argument(
        "--baselines", default="mean,n_classes,log_n_classes", metavar="B1,B2",
        help="difficulty-free predictors the baseline is chosen among (default all three)",
    )  # fmt: skip


def nested_options(args, *, level: float = 0.05):
    """The :class:`NestedOptions` and the measure list from the flags of :func:`add_nested_args`."""
    from clipgap.errors import ConfigError
    from clipgap.predict.honest import NestedOptions
    from clipgap.predict.ranking import check_measures

    try:
        permutations = int(args.permutations)
    except ValueError:
        raise ConfigError(
            f"--permutations {args.permutations!r} is not an integer; give >= 100"
        ) from None
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    options = NestedOptions(
        permutations=permutations, combine=args.combine, baselines=baselines, level=level
    )
    if args.measures is None:
        return options, None
    return options, check_measures([m.strip() for m in args.measures.split(",") if m.strip()])


@commands.register("recommend")
def add_parser(sub) -> None:
    p = sub.add_parser(
        "recommend",
        help="predict each method's dID, dDG and CF on a new task from a study, and rank them",
    )
    add_model_args(p)
    add_device_arg(p)
    p.add_argument("--dataset", required=True, help="the new task's spec, e.g. world:shape")
    p.add_argument(
        "--from", dest="study", required=True, metavar="STUDY_DIR", help="a study's output dir"
    )
    p.add_argument(
        "--objective",
        default="id=1,dg=1,cf=1",
        help="weights of the predicted outcomes to rank by (keys id, dg, cf; missing = 0)",
    )
    p.add_argument(
        "--measure", default=None, help="difficulty measure to predict from (default: chosen "
        "by leave-one-task-out on the study, judged by nested leave-one-task-out)",
    )  # fmt: skip
    add_nested_args(p)
    p.add_argument("--preset", default=None, help="the study's preset (needed if it has several)")
    add_json_arg(p, "the recommendation")
    add_batch_size_arg(p)
    p.add_argument(
        "--no-cache", action="store_true", help="do not read or write the embedding cache"
    )
    add_data_args(p)
    add_task_args(p)
    add_output_args(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from clipgap.backbones import load_backbone
    from clipgap.data import load_task
    from clipgap.errors import ModelError
    from clipgap.predict import parse_objective, read_study, recommend, study_table
    from clipgap.predict.recommend import study_tasks
    from clipgap.predict.table import check_measure

    objective = parse_objective(args.objective)
    options, measures = nested_options(args)
    if args.measure is not None:
        check_measure(args.measure)
    records = read_study(args.study)
    study = study_table(records, preset=args.preset)
    mine, theirs = (args.model, args.pretrained), (study.model, study.pretrained)
    if mine != theirs:
        raise ModelError(
            f"--model {args.model} --pretrained {args.pretrained} differs from the study's model "
            f"{study.model} (pretrained {study.pretrained}); predictions are per model"
        )
    study_tasks(study)
    task = load_task(args.dataset, study.split, options=data_options(args))
    pretrain_world_first(args.model, args)
    backbone = load_backbone(args.model, args.pretrained, device=args.device)
    rec = recommend(
        backbone, task, records, objective=objective, measure=args.measure, measures=measures,
        preset=study.preset, options=options, batch_size=args.batch_size, cache=not args.no_cache,
        progress=args.progress,
    )  # fmt: skip
    say(args, render(rec, dataset=args.dataset, study=args.study))
    emit_json(args, {"dataset": args.dataset, "study": str(args.study), **rec.to_dict()})
    return 0


def _interval(p) -> str:
    if p is None:
        return "-"
    if math.isnan(p.low):
        return f"{p.value:+.3f} (no interval)"
    return f"{p.value:+.3f} [{p.low:+.3f}, {p.high:+.3f}]"


def render(rec, *, dataset: str, study) -> str:
    """The human-readable recommendation."""
    from clipgap.predict.objective import describe
    from clipgap.record import OUTCOME_LABELS

    lo, hi = rec.measure_range
    q = rec.quality
    how = (
        f"chosen among {q.n_candidates} predictors by leave-one-task-out error on the study"
        if rec.measure_chosen == "nested"
        else "given with --measure"
    )
    outcomes = [o.outcome for o in rec.predictions[0].outcomes]
    interval = f"{rec.level:.0%} {q.interval_method}"
    rows = [
        {
            "rank": i + 1,
            "method": p.method,
            "objective": p.score,
            **{f"{OUTCOME_LABELS[o]} [{interval}]": _interval(p.get(o)) for o in outcomes},
        }
        for i, p in enumerate(rec.predictions)
    ]
    quality_rows = [
        {"outcome": OUTCOME_LABELS[o], "nested MAE": a, "baseline MAE": b}
        for o, (a, b) in rec.outcome_mae.items()
    ]
    alone = ", ".join(f"{k} {v:.4f}" for k, v in q.baselines.items())
    cover = q.coverage
    lines = [
        f"new task {dataset} ({rec.split} split, {rec.n_images} images measured) under model "
        f"{rec.model}",
        f"study {study}: preset {rec.preset}, {len(rec.tasks)} tasks ({', '.join(rec.tasks)})",
        f"predictor {rec.measure} ({how}); on the new task "
        + ", ".join(f"{m} = {v:.4f}" for m, v in rec.values.items())
        + f" (studied range of {next(iter(rec.values), '-')}: {lo:.4f} .. {hi:.4f})",
        f"objective: {describe(rec.objective)}  (higher is better)",
        "",
        f"predicted outcomes, {rec.level:.0%} intervals ("
        + (
            "ols: OLS-type, they covered under LOTO"
            if q.interval_method == "ols"
            else "conformal: from the nested residuals, since OLS-type ones covered too little"
        )
        + "):",
        table(rows),
        "",
        f"recommended: {rec.best} (the baseline that ignores difficulty picks "
        f"{rec.baseline_best}: best mean objective over the study's tasks)",
        "",
        f"how good the whole procedure was on the study (nested leave-one-task-out, "
        f"{q.n_tasks} tasks; the predictor re-chosen inside each fold; baseline chosen among "
        f"difficulty-free predictors the same way):",
        table(quality_rows),
        f"best method picked: {q.hits}/{q.n_tasks} tasks (baseline {q.baseline_hits}/"
        f"{q.n_tasks}); mean regret {q.regret:.4f} (baseline {q.baseline_regret:.4f})",
        f"each alone (plain LOTO, weighted error): {alone}",
        f"LOTO coverage of {rec.level:.0%} intervals: OLS-type {cover['ols']:.0%}, jackknife "
        f"{cover['jackknife']:.0%}",
        f"The nested procedure {q.verdict()}.",
    ]
    lines += [f"warning: {w}" for w in rec.warnings]
    return "\n".join(lines)
