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
        "--measure", default=None, help="difficulty measure to predict from (default: the one "
        "with the lowest leave-one-task-out error on the study)",
    )  # fmt: skip
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
        backbone, task, records, objective=objective, measure=args.measure,
        preset=study.preset, batch_size=args.batch_size, cache=not args.no_cache,
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
    how = (
        "chosen by leave-one-task-out error on the study"
        if rec.measure_chosen == "loto"
        else "given with --measure"
    )
    outcomes = [o.outcome for o in rec.predictions[0].outcomes]
    rows = [
        {
            "rank": i + 1,
            "method": p.method,
            "objective": p.score,
            **{f"{OUTCOME_LABELS[o]} [{rec.level:.0%} PI]": _interval(p.get(o)) for o in outcomes},
        }
        for i, p in enumerate(rec.predictions)
    ]
    q = rec.quality
    quality_rows = [
        {"outcome": OUTCOME_LABELS[o], "LOTO MAE": q.mae[o], "baseline MAE": q.baseline_mae[o]}
        for o in q.mae
    ]
    lines = [
        f"new task {dataset} ({rec.split} split, {rec.n_images} images measured) under model "
        f"{rec.model}",
        f"study {study}: preset {rec.preset}, {len(rec.tasks)} tasks ({', '.join(rec.tasks)})",
        f"measure {rec.measure} = {rec.measure_value:.4f} on the new task (studied range "
        f"{lo:.4f} .. {hi:.4f}); {how}",
        f"objective: {describe(rec.objective)}  (higher is better)",
        "",
        f"predicted outcomes, {rec.level:.0%} prediction intervals (OLS line per method):",
        table(rows),
        "",
        f"recommended: {rec.best} (the baseline that ignores difficulty picks "
        f"{rec.baseline_best}: best mean objective over the study's tasks)",
        "",
        f"how good such predictions were on the study (leave-one-task-out, {q.n_tasks} tasks; "
        "baseline = each method's mean over the other tasks):",
        table(quality_rows),
        f"best method picked: {q.hits}/{q.n_tasks} tasks (baseline {q.baseline_hits}/"
        f"{q.n_tasks}); mean regret {q.regret:.4f} (baseline {q.baseline_regret:.4f})",
        q.sentence(),
    ]
    lines += [f"warning: {w}" for w in rec.warnings]
    return "\n".join(lines)
