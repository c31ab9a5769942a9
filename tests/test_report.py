"""The study report: records in, report.md / report.html / results.csv / figures out.

The golden fixture ``tests/data/report_records`` is made by ``golden_records()`` below and the
expected report is ``tests/data/report_golden.md``. To change either deliberately:
``CLIPGAP_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_report.py -k golden`` (rewrites both), then
read the diff.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from clipgap.cli import main
from clipgap.errors import ConfigError, DataError
from clipgap.record import PAPER_METHODS, RecordSchemaError, read_record, read_records
from clipgap.report import build_report
from clipgap.report.analysis import analyse
from clipgap.report.claims import ClaimOptions, Status
from clipgap.report.claims.verdict import combine
from clipgap.report.formats import to_markdown
from clipgap.report.formatting import num, pval
from clipgap.report.relations import lookup
from clipgap.report.sections.outcomes import method_section
from clipgap.report.study import load_study

HOLDS, FAILS, UNTESTABLE = Status.HOLDS, Status.DOES_NOT_HOLD, Status.CANNOT_BE_TESTED
NOT_SIGNIFICANT = Status.NOT_SIGNIFICANT

DATA = Path(__file__).parent / "data"
FIXTURE = DATA / "report_records"
GOLDEN = DATA / "report_golden.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

# task: ss modality, ss class, ACS, zero-shot acc, modality gap, images, classes, DG domains
GOLDEN_TASKS = {
    "world:digits": (0.62, 0.05, 0.18, 0.22, 0.95, 400, 10, ["@inverted"]),
    "world:scenes": (0.41, 0.12, 0.27, 0.58, 0.81, 600, 12, []),
    "world:shapes": (0.35, 0.20, 0.24, 0.71, 0.77, 500, 8, ["@sketch", "@noise"]),
    "world:signs": (0.55, 0.02, 0.21, 0.31, 0.90, 450, 15, ["@night"]),
    "world:textures": (0.48, 0.08, 0.30, 0.44, 0.86, 350, 20, ["@blur"]),
}
# method: dID slope on ss, dID offset, dDG scale, CF scale, trainable params
GOLDEN_METHODS = {
    "full": (0.60, -0.05, 0.050, -0.090, 1_200_000),
    "aclip": (0.55, -0.04, 0.045, -0.030, 240_000),
    "bitfit": (0.50, -0.03, 0.010, -0.050, 3_000),
    "lora": (0.40, -0.03, 0.005, -0.010, 8_000),
    "clip_adapter": (0.45, -0.04, 0.040, -0.060, 8_192),
    "linear_probe": (0.35, -0.02, 0.000, 0.000, 1_300),
}


def run_id(task: str, method: str, seed: int) -> str:
    return hashlib.sha1(f"{task}|{method}|{seed}".encode()).hexdigest()[:12]


def make_record(
    task: str, method: str, seed: int, *, difficulty: dict, zs: dict, ft: dict, **extra
) -> dict:
    """A complete schema-2 record whose deltas are computed from ``zs`` and ``ft`` scores."""
    dg = {d: ft["dg"][d] - zs["dg"][d] for d in ft["dg"]}
    cf = {c: ft["control"][c] - zs["control"][c] for c in ft["control"]}
    return {
        "schema": 2,
        "run_id": run_id(task, method, seed),
        "status": "complete",
        "error": None,
        "task": task,
        "method": method,
        "seed": seed,
        "preset": "tuned",
        "model": "clipgap-tiny",
        "config": {"train": {"epochs": 2, "lr": 1e-3}, "method": {}},
        "shots": None,
        "difficulty": {"split": "test", **difficulty},
        "zero_shot": zs,
        "finetuned": ft,
        "delta_id": ft["id"] - zs["id"],
        "delta_dg": float(np.mean(list(dg.values()))) if dg else None,
        "delta_dg_per_domain": dg,
        "cf": cf,
        "cf_mean": float(np.mean(list(cf.values()))) if cf else None,
        "trainable_params": 1000,
        "best_epoch": 2,
        "val_accuracy": 0.5,
        "val_accuracy_start": None,
        "history": [],
        "interpolation": [],
        "seconds": 10.0,
        "eval_seconds": 1.0,
        "peak_memory_mb": 100.0,
        "versions": {"clipgap": "0.1.0", "open_clip": "3.3.0", "torch": "2.14.1"},
        "device": "cpu",
        **extra,
    }


def failed_record(task: str, method: str, seed: int, error: str) -> dict:
    return {
        "schema": 2,
        "run_id": run_id(task, method, seed),
        "status": "failed",
        "error": error,
        "task": task,
        "method": method,
        "seed": seed,
        "preset": "tuned",
        "model": "clipgap-tiny",
        "config": {},
        "shots": None,
    }


def golden_records() -> tuple[list[dict], list[dict]]:
    """The golden study: 5 tasks x 6 methods x 2 seeds, one failed run, one unfinished run.

    Returns (finished records, [the unfinished record]). Accuracies are multiples of 1/n_images.
    """
    rng = np.random.default_rng(2402)
    records = []
    for task, (ss, ssc, acs, zs_acc, gap, n, n_cls, doms) in GOLDEN_TASKS.items():
        q = lambda x, n=n: round(min(max(x, 0.0), 1.0) * n) / n  # noqa: E731
        difficulty = {
            "silhouette_modality": ss, "silhouette_class": ssc, "acs": acs,
            "zero_shot_accuracy": zs_acc, "modality_gap": gap, "n_images": n, "n_classes": n_cls,
        }  # fmt: skip
        zs_dg = {task + d: q(zs_acc - 0.1 * (k + 1)) for k, d in enumerate(doms)}
        controls = {c: GOLDEN_TASKS[c][3] for c in GOLDEN_TASKS if c != task}
        zs = {"id": zs_acc, "dg": zs_dg, "control": controls}
        for method, (slope, offset, dg_scale, cf_scale, params) in GOLDEN_METHODS.items():
            frozen = method == "linear_probe"  # frozen image tower: control tasks unchanged
            for seed in (0, 1):
                ft = {
                    "id": q(zs_acc + slope * ss + offset + rng.normal(0, 0.015)),
                    "dg": {
                        d: q(v + dg_scale * (1 + ss) + rng.normal(0, 0.01))
                        for d, v in zs_dg.items()
                    },
                    "control": {
                        c: v if frozen else q(v + cf_scale * (1 + ss) + rng.normal(0, 0.008))
                        for c, v in controls.items()
                    },
                }
                rec = make_record(task, method, seed, difficulty=difficulty, zs=zs, ft=ft)
                rec.update(trainable_params=params, seconds=round(20 + 100 * rng.random(), 2))
                records.append(rec)
    records.append(
        failed_record("world:signs", "lora", 2, "TrainingError: loss is not finite at epoch 3")
    )
    ghost = dict(records[0], task="world:ghost", run_id="unfinished-run")
    return records, [ghost]


def write_study(root: Path, records: list[dict], unfinished: list[dict] = ()) -> Path:
    """STUDY/runs/<run_id>/record.json (+ DONE for finished ones)."""
    for rec, done in [*((r, True) for r in records), *((r, False) for r in unfinished)]:
        run_dir = root / "runs" / rec["run_id"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "record.json").write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        if done:
            (run_dir / "DONE").write_text("")
    return root


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> Path:
    """The golden study copied to a temporary directory, with its report built."""
    if os.environ.get("CLIPGAP_REGEN_GOLDEN"):
        shutil.rmtree(FIXTURE, ignore_errors=True)
        write_study(FIXTURE, *golden_records())
    study = tmp_path_factory.mktemp("golden") / "report_records"
    shutil.copytree(FIXTURE, study)
    build_report(study)
    if os.environ.get("CLIPGAP_REGEN_GOLDEN"):
        shutil.copyfile(study / "report" / "report.md", GOLDEN)
    return study


# ---------------------------------------------------------------------------------------------
# Golden study
# ---------------------------------------------------------------------------------------------


def test_fixture_is_made_by_its_recipe(tmp_path):
    expected = write_study(tmp_path / "s", *golden_records())
    made = sorted(p.relative_to(expected) for p in expected.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(FIXTURE) for p in FIXTURE.rglob("*") if p.is_file())
    assert made == committed
    for rel in made:
        assert (expected / rel).read_bytes() == (FIXTURE / rel).read_bytes(), rel


def test_report_md_matches_golden(golden):
    assert (golden / "report" / "report.md").read_text() == GOLDEN.read_text()


def test_report_json_holds_the_nested_measure_ranking(golden, tmp_path, capsys):
    out = tmp_path / "again"
    assert main(["report", str(golden), "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # --json alone: only JSON on stdout
    assert data["report"] == str(out / "report.md")
    ranking = data["measure_ranking"]
    assert {"dID", "CF", "dID/(1-zs)"} <= set(ranking)
    text = (out / "report.md").read_text()
    for label, row in ranking.items():
        if "why" in row:
            continue
        assert row["permutations"] == 1000 and 1 / 1001 <= row["p_value"] <= 1
        assert row["beats_baseline"] == (
            row["nested_mae"] < row["baseline_mae"] and row["p_value"] < 0.05
        )
        word = "beats" if row["beats_baseline"] else "does not beat"
        assert f"**{label}**: choosing among" in text
        assert f"it {word} the baseline (permutation p = {pval(row['p_value'])}" in text
    assert [c["key"] for c in data["claims"]][:2] == ["1", "2"]


def test_report_is_deterministic(golden, tmp_path):
    again = tmp_path / "report_records"
    shutil.copytree(FIXTURE, again)
    build_report(again)
    for name in ("report.md", "report.html", "results.csv", "results_long.csv"):
        assert (again / "report" / name).read_bytes() == (golden / "report" / name).read_bytes()
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}", GOLDEN.read_text())  # no dates


def test_results_csv_rows_and_columns(golden):
    frame = pd.read_csv(golden / "report" / "results.csv")
    records, (ghost,) = golden_records()
    assert len(frame) == len(records) == 61  # 5 tasks x 6 methods x 2 seeds + 1 failed
    assert ghost["task"] not in set(frame["task"])  # no DONE: ignored
    for column in (
        "run_id", "task", "method", "seed", "status", "silhouette_modality", "silhouette_class",
        "acs", "zero_shot_accuracy", "modality_gap", "zs_id", "ft_id", "delta_id", "delta_dg",
        "cf", "trainable_params", "seconds", "delta_dg[world:shapes@sketch]",
        "cf[world:digits]", "zs_control[world:digits]", "ft_dg[world:signs@night]",
        "version_torch",
    ):  # fmt: skip
        assert column in frame.columns, column
    by_id = frame.set_index("run_id")
    for rec in records[::7]:
        row = by_id.loc[rec["run_id"]]
        assert row["task"] == rec["task"] and row["status"] == rec["status"]
        if rec["status"] == "complete":
            assert row["delta_id"] == pytest.approx(rec["delta_id"], abs=1e-12)
            # the CSV's cf is the mean forgetting (the record's JSON key cf_mean), cf[T] each
            assert row["cf"] == pytest.approx(rec["cf_mean"], abs=1e-12)
            for control, value in rec["cf"].items():
                assert row[f"cf[{control}]"] == pytest.approx(value, abs=1e-12)
    failed = frame[frame["status"] == "failed"]
    assert list(failed["method"]) == ["lora"] and failed["delta_id"].isna().all()
    assert frame.loc[frame["task"] == "world:scenes", "delta_dg"].isna().all()


def test_html_is_self_contained(golden):
    page = (golden / "report" / "report.html").read_text()
    assert "http" not in page and "<link" not in page and "<script src" not in page
    assert page.count("<script>") == 1  # the inline table sorter
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 5
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert page.count('<div class="claim') == 6
    assert "<table>" in page and "world:textures" in page


def test_figures_are_png(golden):
    figures = sorted((golden / "report" / "figures").iterdir())
    assert [f.name for f in figures] == [
        "dg_vs_cf.png",
        "difficulty_vs_delta_id.png",
        "forgetting_by_method.png",
        "forgetting_heatmap.png",
        "measure_ranking.png",
    ]
    for fig in figures:
        data = fig.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 20_000, fig.name
    md = (golden / "report" / "report.md").read_text()
    assert all(f"(figures/{f.name})" in md for f in figures)


def test_failed_runs_listed_and_excluded(golden):
    md = (golden / "report" / "report.md").read_text()
    failed = md.split("## Failed runs", 1)[1]
    assert run_id("world:signs", "lora", 2) in failed
    assert "loss is not finite" in failed
    assert "unfinished-run" in failed  # listed as skipped
    analysis = analyse(load_study(golden))
    lora = analysis.cells.set_index(["unit", "arm"]).loc[("world:signs", "lora")]
    assert lora["n_seeds"] == 2
    assert lookup(analysis.relations, "lora", "acs", "delta_id")["n"] == 5


def test_tables_average_seeds_then_tasks(golden):
    records, _ = golden_records()
    analysis = analyse(load_study(golden))
    done = [r for r in records if r["status"] == "complete"]
    aclip = [r for r in done if r["method"] == "aclip"]
    per_task = {}
    for r in aclip:
        per_task.setdefault(r["task"], []).append(r["delta_id"])
    expected = np.mean([np.mean(v) for v in per_task.values()])
    row = analysis.methods.set_index("arm").loc["aclip"]
    assert row["delta_id"] == pytest.approx(expected, abs=1e-12)
    pooled_seed_std = np.sqrt(np.mean([np.var(v, ddof=1) for v in per_task.values()]))
    assert row["delta_id_std"] == pytest.approx(pooled_seed_std, abs=1e-12)
    # claims' relation: one point per task, dID averaged over the five paper methods and seeds
    tasks = sorted(GOLDEN_TASKS)
    paper = [r for r in done if r["method"] in PAPER_METHODS]
    did = [
        np.mean([np.mean([r["delta_id"] for r in paper if (r["task"], r["method"]) == (t, m)])
                 for m in PAPER_METHODS])
        for t in tasks
    ]  # fmt: skip
    ss = [GOLDEN_TASKS[t][0] for t in tasks]
    rel = lookup(analysis.relations, "paper methods", "silhouette_modality", "delta_id")
    assert rel["n"] == 5
    assert rel["spearman_rho"] == pytest.approx(sps.spearmanr(ss, did)[0], abs=1e-12)
    assert rel["pearson_r"] == pytest.approx(sps.pearsonr(ss, did)[0], abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Claims on constructed studies
# ---------------------------------------------------------------------------------------------


def simple_record(
    task, method, seed, *, ss, acs, zs_acc, d_id, d_dg=None, cf=None, split="test", shots=None
) -> dict:
    difficulty = {
        "silhouette_modality": ss, "silhouette_class": 0.1, "acs": acs,
        "zero_shot_accuracy": zs_acc, "modality_gap": 0.8, "n_images": 100, "n_classes": 5,
    }  # fmt: skip
    zs = {"id": zs_acc, "dg": {}, "control": {}}
    ft = {"id": zs_acc + d_id, "dg": {}, "control": {}}
    if d_dg is not None:
        zs["dg"], ft["dg"] = {f"{task}@shift": 0.5}, {f"{task}@shift": 0.5 + d_dg}
    if cf is not None:
        zs["control"], ft["control"] = {"other:ctrl": 0.5}, {"other:ctrl": 0.5 + cf}
    rec = make_record(task, method, seed, difficulty=difficulty, zs=zs, ft=ft, shots=shots)
    rec["difficulty"]["split"] = split
    if shots is not None:
        rec["run_id"] += f"-k{shots}"
    return rec


def claims_of(tmp_path: Path, records: list[dict], **options) -> dict:
    study = write_study(tmp_path / "study", records)
    analysis = analyse(load_study(study), ClaimOptions(**options))
    return {c.key: c for c in analysis.claims}


# Per task: ss rises; ACS and zero-shot accuracy are fixed orders unrelated to it (and to each
# other: Spearman |rho| <= 0.25 between any two of the three over 12 tasks).
SS = [0.20 + 0.05 * i for i in range(12)]
ACS = [0.25, 0.10, 0.30, 0.15, 0.20, 0.35, 0.12, 0.33, 0.18, 0.28, 0.22, 0.14]
ZS = [0.30, 0.45, 0.25, 0.20, 0.55, 0.40, 0.35, 0.22, 0.60, 0.33, 0.50, 0.28]


def difficulty_study(did_from, n_tasks=12, methods=PAPER_METHODS, **extra) -> list[dict]:
    """dID = did_from(ss, acs, zs) (+ 0.01 per method, so methods differ) on n_tasks tasks."""
    records = []
    for i in range(n_tasks):
        for k, method in enumerate(methods):
            d_id = did_from(SS[i], ACS[i], ZS[i]) + 0.01 * k
            records.append(
                simple_record(
                    f"t:{i:02d}", method, 0, ss=SS[i], acs=ACS[i], zs_acc=ZS[i], d_id=d_id,
                    **extra,
                )
            )  # fmt: skip
    return records


def test_fixed_task_orders_are_unrelated():
    for a, b in ((SS, ACS), (SS, ZS), (ACS, ZS)):
        assert abs(sps.spearmanr(a, b)[0]) <= 0.25


def test_claim1_holds_when_ss_tracks_gain(tmp_path):
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss))["1"]
    assert claim.status == HOLDS
    text = " ".join(claim.evidence)
    assert "Over 12 tasks with all five paper methods" in text and "ρ = +1.00" in text
    low = float(re.search(r"interval \[([+-][\d.]+),", text).group(1))
    assert low > 0 and "the interval lies above 0" in text
    assert "10,000 times, seed 0" in text and "Williams' t" in text


def test_claim1_does_not_hold_when_acs_tracks_gain(tmp_path):
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.3 - 0.5 * acs))["1"]
    assert claim.status == FAILS
    assert "the interval lies below 0" in " ".join(claim.evidence)


def test_claim1_not_significant_when_both_track_gain_alike(tmp_path):
    # dID = rank(ss) + rank(ACS): both correlate about equally with it
    ss_rank, acs_rank = sps.rankdata(SS), sps.rankdata(ACS)
    gain = {s: (r + a) / 100 for s, r, a in zip(SS, ss_rank, acs_rank, strict=True)}
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: gain[ss]))["1"]
    assert claim.status == NOT_SIGNIFICANT
    assert "the interval contains 0" in " ".join(claim.evidence)


def test_claim1_cannot_be_tested_at_five_tasks_even_when_ss_tracks_gain(tmp_path):
    # a perfect ss-dID ranking over 5 tasks: still 9.6 % of resamples hold two tasks (D = 0)
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=5))["1"]
    text = " ".join(claim.evidence)
    assert claim.status == UNTESTABLE
    assert "9.6% of resamples at n = 5" in text and "only from n = 6 tasks" in text
    assert "so at n = 5 the claim cannot be tested" in text and "interval [" not in text
    assert "ρ(ss, dID) > 0 expected, +1.00 here: as expected" in text


def test_claim1_can_decide_at_six_tasks(tmp_path):
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=6))["1"]
    text = " ".join(claim.evidence)
    assert claim.status != UNTESTABLE and "2.0% of resamples at n = 6" in text
    assert "cannot be tested" not in text and "interval [" in text


def test_claim1_states_signs_against_the_papers_reading(tmp_path):
    claim = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.3 - 0.5 * ss))["1"]
    text = " ".join(claim.evidence)
    assert "ρ(ss, dID) > 0 expected, -1.00 here: opposite to the reading" in text
    assert "ρ(ACS, dID) < 0 expected" in text


def test_two_task_share_is_exact():
    from fractions import Fraction
    from itertools import product

    from clipgap.report.claims.attainability import (
        bootstrap_can_decide,
        smallest_decidable_n,
        two_task_share,
    )

    for n in (3, 4, 5):  # enumerate every resample of n tasks
        distinct = [len(set(draw)) for draw in product(range(n), repeat=n)]
        kept = [d for d in distinct if d >= 2]
        assert two_task_share(n) == Fraction(kept.count(2), len(kept))
    assert float(two_task_share(5)) == pytest.approx(0.0962, abs=1e-4)
    assert float(two_task_share(6)) == pytest.approx(0.0199, abs=1e-4)
    assert not bootstrap_can_decide(5, 0.05) and bootstrap_can_decide(6, 0.05)
    assert smallest_decidable_n(0.05) == 6 and smallest_decidable_n(0.01) == 7


def test_claims_1_2_untestable_with_few_tasks(tmp_path):
    claims = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=3))
    assert claims["1"].status == UNTESTABLE and claims["2"].status == UNTESTABLE
    assert "n too small: 3 tasks" in " ".join(claims["1"].evidence)


def test_claims_use_only_the_five_paper_methods(tmp_path):
    # The linear probe's dID tracks ACS, not ss; pooled in, it would drag claim 1 down.
    records = difficulty_study(lambda ss, acs, zs: 0.4 * ss)
    probe = difficulty_study(lambda ss, acs, zs: 1.0 * (0.4 - acs), methods=("linear_probe",))
    analysis = analyse(load_study(write_study(tmp_path, records + probe)))
    assert {c.key: c.status for c in analysis.claims}["1"] == HOLDS
    assert analysis.groups == {"": {m: m for m in PAPER_METHODS}}
    # oracle: per task, the mean dID over the five paper methods only
    paper = [r for r in records if r["method"] in PAPER_METHODS]
    expected = [
        np.mean([r["delta_id"] for r in paper if r["task"] == f"t:{i:02d}"]) for i in range(12)
    ]
    means = analysis.means["paper methods"]
    assert means["delta_id"].to_numpy() == pytest.approx(expected, abs=1e-12)
    assert "linear probe" not in " ".join(e for c in analysis.claims for e in c.evidence)


def test_claims_need_every_paper_method(tmp_path):
    records = difficulty_study(lambda ss, acs, zs: 0.4 * ss, methods=("full", "lora"))
    claims = claims_of(tmp_path, records)
    assert all(c.status == UNTESTABLE for c in claims.values())
    assert "No complete runs of A-CLIP, BitFit, CLIP-Adapter" in claims["1"].evidence[0]


def test_claim2_holds_with_a_strong_relation(tmp_path):
    claims = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=7))
    assert claims["2"].status == HOLDS
    text = " ".join(claims["2"].evidence)
    assert "ss (modality) vs dID" in text and "positive, survives Holm" in text


def test_claim2_headroom_relation_does_not_decide(tmp_path):
    # dID falls with zero-shot accuracy only: the one relation found is the headroom artefact
    claims = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.6 - zs))
    assert claims["2"].status == NOT_SIGNIFICANT
    text = " ".join(claims["2"].evidence)
    assert "2 relations tested" in text  # only dID is measured here
    assert "Shown, not tested: zero-shot acc vs dID ρ = -1.00" in text


def test_claim2_not_significant_is_not_does_not_hold(tmp_path):
    # dID unrelated to ss, ACS and zero-shot accuracy
    noise = [0.15, 0.05, 0.25, 0.10, 0.30, 0.20, 0.12, 0.18, 0.08, 0.22, 0.28, 0.16]
    gain = dict(zip(SS, noise, strict=True))
    claims = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: gain[ss]))
    assert claims["2"].status == NOT_SIGNIFICANT


def test_claim2_untestable_when_no_p_could_survive_holm(tmp_path):
    # 4 tasks: a perfect ranking has exact p = 2/4! = 0.083 > 0.05/2 (two defined relations)
    claims = claims_of(tmp_path, difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4))
    assert claims["2"].status == UNTESTABLE
    assert "smallest possible p is 0.083" in claims["2"].evidence[0]


def test_difficulty_split_is_shown(tmp_path):
    records = difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=5, split="train")
    md = build_report(write_study(tmp_path / "train", records)).read_text()
    assert "Measured on the zero-shot embeddings of each task's train split" in md
    assert "the zero-shot accuracy here (train split)" in md
    records[0]["difficulty"]["split"] = "test"  # one run of t:00 measured on test
    md = build_report(write_study(tmp_path / "mixed", records)).read_text()
    assert "the split named in the last column" in md and "| test, train |" in md


# mean dID, dDG, CF per paper method for a study in which every part of claim 3 holds
CLAIM3_HOLDS = {
    "full": (0.30, 0.10, -0.10),
    "aclip": (0.25, 0.08, -0.02),
    "bitfit": (0.28, 0.02, -0.06),
    "lora": (0.15, 0.01, -0.005),
    "clip_adapter": (0.20, 0.09, -0.08),
}
CLAIM3_FAILS = {
    "full": (0.30, 0.10, 0.02),
    "aclip": (0.25, 0.00, -0.20),
    "bitfit": (0.10, 0.02, -0.06),
    "lora": (0.15, 0.01, -0.30),
    "clip_adapter": (0.20, -0.05, -0.08),
}


def method_study(profile: dict, *, tasks=10, dg=True, cf_of=None) -> list[dict]:
    """One seed per run; method k's outcome = profile + 0.0002 t (k + 1) on task t, so paired
    differences vary but keep the profile's sign on every task. ``cf_of(method, t)`` overrides
    CF."""
    records = []
    for t in range(tasks):
        for k, (method, (d_id, d_dg, cf)) in enumerate(profile.items()):
            wiggle = 0.0002 * t * (k + 1)
            cf = cf_of(method, t) if cf_of else cf + wiggle
            records.append(
                simple_record(
                    f"t:{t}", method, 0, ss=0.3 + 0.01 * t, acs=0.2, zs_acc=0.5,
                    d_id=d_id + wiggle, d_dg=d_dg + wiggle if dg else None, cf=cf,
                )
            )  # fmt: skip
    return records


def statuses(claims: dict, keys=("3a", "3b", "3c", "3d")) -> dict:
    return {k: claims[k].status for k in keys}


def test_claim3_holds(tmp_path):
    claims = claims_of(tmp_path, method_study(CLAIM3_HOLDS))
    assert statuses(claims) == dict.fromkeys(("3a", "3b", "3c", "3d"), HOLDS)
    assert "One seed per run: seed spread is unknown" in claims["3a"].evidence[0]
    assert "Over the 10 tasks with all five paper methods" in claims["3a"].evidence[0]
    # balance per task: A-CLIP (dDG #3 + CF #2) / 2 = 2.5 on every task
    assert "A-CLIP 2.50" in " ".join(claims["3a"].evidence)
    # lower balance is better: what is printed (and tested) is other minus A-CLIP, + = A-CLIP
    # better; LoRA's balance is (#5 + #1) / 2 = 3, so LoRA minus A-CLIP = +0.50
    balance = next(e for e in claims["3a"].evidence if e.startswith("Balance score"))
    assert "each other method minus A-CLIP over 10 tasks (+ = A-CLIP better" in balance
    assert "vs LoRA +0.500" in balance
    # ten differences of one sign: exact p = 2 / 2^10 = 0.00195
    text = " ".join(claims["3b"].evidence)
    # LoRA - full = 0.095 + 0.0006 t, mean over t = 0..9: 0.0977
    assert "vs full +0.098 (p = 0.002)" in text and "better than 4 of 4" in text


def test_claim3_does_not_hold(tmp_path):
    claims = claims_of(tmp_path, method_study(CLAIM3_FAILS))
    assert statuses(claims) == dict.fromkeys(("3a", "3b", "3c", "3d"), FAILS)
    assert "4 significantly better than BitFit" in " ".join(claims["3c"].evidence)


def test_claim3_not_significant_when_tasks_disagree(tmp_path):
    # LoRA and A-CLIP trade places on CF task by task: LoRA is not shown to forget least.
    def cf_of(method, t):
        swing = 0.01 if t % 2 else -0.01
        return {"lora": -0.02 + swing, "aclip": -0.02 - swing}.get(method, -0.1 - 0.01 * t)

    claim = claims_of(tmp_path, method_study(CLAIM3_HOLDS, cf_of=cf_of))["3b"]
    assert claim.status == NOT_SIGNIFICANT
    assert "better than 3 of 4" in " ".join(claim.evidence)


def test_claim3_one_seed_sign_is_not_beyond_noise(tmp_path):
    # BitFit's mean CF is negative (-0.02) but its sign flips across tasks. With one seed the
    # pooled seed std is unknown (never 0), so the mean alone proves nothing; the paired test
    # over tasks finds no significant sign.
    bitfit_cf = [-0.3, 0.1, 0.1, 0.1, 0.1, -0.3, 0.1, -0.3, 0.1, 0.1]

    def cf_of(method, t):
        return bitfit_cf[t] if method == "bitfit" else dict(CLAIM3_HOLDS)[method][2]

    claim = claims_of(tmp_path, method_study(CLAIM3_HOLDS, cf_of=cf_of))["3c"]
    assert claim.status == NOT_SIGNIFICANT
    assert "BitFit CF: mean -0.020 over 10 tasks" in " ".join(claim.evidence)
    assert "p = 1 (not significant)" in " ".join(claim.evidence)


def test_claim3_untestable(tmp_path):
    missing = {k: v for k, v in CLAIM3_HOLDS.items() if k != "lora"}
    claims = claims_of(tmp_path / "a", method_study(missing))
    assert set(statuses(claims).values()) == {UNTESTABLE}
    assert "No complete runs of LoRA" in claims["3a"].evidence[0]
    claims = claims_of(tmp_path / "b", method_study(CLAIM3_HOLDS, tasks=5))
    assert set(statuses(claims).values()) == {UNTESTABLE}
    assert "n too small: 5 tasks, at least 6 needed" in claims["3b"].evidence[-2]
    claims = claims_of(tmp_path / "c", method_study(CLAIM3_HOLDS, dg=False))
    assert claims["3a"].status == UNTESTABLE and claims["3d"].status == UNTESTABLE
    assert claims["3b"].status == HOLDS and claims["3c"].status == HOLDS


def test_combine_parts():
    assert combine([HOLDS, HOLDS]) == HOLDS
    assert combine([HOLDS, NOT_SIGNIFICANT]) == NOT_SIGNIFICANT
    assert combine([UNTESTABLE, HOLDS]) == UNTESTABLE
    assert combine([UNTESTABLE, FAILS, HOLDS]) == FAILS


def test_claim_options_validated():
    with pytest.raises(ConfigError, match="claims.level is 1.5"):
        ClaimOptions(level=1.5)
    with pytest.raises(ConfigError, match="claims.min_tasks"):
        ClaimOptions(min_tasks=2)
    with pytest.raises(ConfigError, match="claims.n_resamples"):
        ClaimOptions(n_resamples=10)


def test_limited_data_section_and_claims_on_all_shots(tmp_path):
    records = []
    for shots, scale in ((4, 0.25), (16, 0.6), (None, 1.0)):
        records += difficulty_study(
            lambda ss, acs, zs, s=scale: s * 0.4 * ss, n_tasks=6, shots=shots
        )
    study = write_study(tmp_path, records)
    analysis = analyse(load_study(study))
    assert analysis.groups == {"": {m: f"{m}@all" for m in PAPER_METHODS}}
    full_data = [r for r in records if r["shots"] is None and r["task"] == "t:00"]
    means = analysis.means["paper methods"].set_index("unit")
    assert means.at["t:00", "delta_id"] == pytest.approx(
        np.mean([r["delta_id"] for r in full_data])
    )
    md = build_report(study).read_text()
    section = md.split("## Limited data", 1)[1].split("\n## ", 1)[0]
    assert "| method | k = 4 | k = 16 | k = all |" in section
    lora = [r["delta_id"] for r in records if r["method"] == "lora" and r["shots"] == 4]
    assert f"| LoRA | {np.mean(lora):+.3f} (6) |" in section
    assert "LoRA (k=4) †" in md and "LoRA (k=all) |" in md
    assert (
        (study / "report" / "figures" / "outcomes_vs_shots.png").read_bytes().startswith(PNG_MAGIC)
    )


# ---------------------------------------------------------------------------------------------
# Loading, validation, CLI, helpers
# ---------------------------------------------------------------------------------------------


def test_dirs_without_done_are_ignored(tmp_path):
    recs = difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4)
    ghost = simple_record("t:ghost", "full", 0, ss=0.9, acs=0.9, zs_acc=0.9, d_id=0.05)
    study = load_study(write_study(tmp_path, recs, [ghost]))
    assert len(study.records) == len(recs)
    assert study.unfinished == [ghost["run_id"]]
    assert "t:ghost" not in {r.task for r in study.records}


def test_undefined_difficulty_is_missing_not_an_error(tmp_path):
    rec = simple_record("t:0", "full", 0, ss=0.3, acs=0.2, zs_acc=0.5, d_id=0.1)
    rec["difficulty"]["silhouette_class"] = None
    analysis = analyse(load_study(write_study(tmp_path, [rec])))
    assert analysis.difficulty["silhouette_class"].isna().all()
    assert analysis.difficulty["silhouette_modality"].tolist() == [0.3]


def test_failed_record_with_numbers_is_excluded(tmp_path):
    recs = difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4)
    bad = dict(recs[0], status="failed", error="boom", seed=9, run_id="failed-run")
    bad["delta_id"] = 0.9
    analysis = analyse(load_study(write_study(tmp_path, [*recs, bad])))
    cell = analysis.cells.set_index(["unit", "arm"]).loc[(recs[0]["task"], "full")]
    assert cell["n_seeds"] == 1 and cell["delta_id"] == pytest.approx(recs[0]["delta_id"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("delta_id"), "key 'delta_id' is missing"),
        (lambda r: r.update(delta_id=0.7), "key 'delta_id' is 0.7; expected"),
        (lambda r: r["difficulty"].update(acs="high"), "key 'difficulty.acs' is 'high'"),
        (
            lambda r: r["finetuned"].update(id=1.5),
            r"'finetuned.id' is 1.5; expected .* in \[0, 1\]",
        ),
        (lambda r: r.update(status="done"), "key 'status' is 'done'"),
        (lambda r: r.update(cf={"nope": 0.1}), r"key 'cf' is \['nope'\]; expected entries"),
        (lambda r: r.update(seed="0"), "key 'seed' is '0'; expected an integer"),
    ],
)
def test_malformed_records_raise(tmp_path, edit, message):
    good = simple_record("t:1", "full", 0, ss=0.4, acs=0.3, zs_acc=0.5, d_id=0.2, cf=-0.1)
    rec = simple_record("t:0", "full", 0, ss=0.3, acs=0.2, zs_acc=0.5, d_id=0.1, cf=-0.1)
    edit(rec)
    write_study(tmp_path, [good, rec])
    run_dir = tmp_path / "runs" / rec["run_id"]
    with pytest.raises(DataError, match=message) as info:
        read_record(run_dir)
    assert "record.json" in str(info.value)
    # the study reader reports it, one line, and keeps the good run
    found = read_records(tmp_path)
    assert list(found.corrupt) == [rec["run_id"]] and list(found.finished) == [good["run_id"]]
    assert found.corrupt[rec["run_id"]] == str(info.value)


def test_corrupt_records_are_left_out_of_the_report_with_one_warning(tmp_path, caplog):
    recs = difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4)
    write_study(tmp_path, recs)
    bad_json, no_record = tmp_path / "runs" / "bad-json", tmp_path / "runs" / "no-record"
    for run_dir in (bad_json, no_record):
        run_dir.mkdir()
        (run_dir / "DONE").write_text("complete\n")
    (bad_json / "record.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="clipgap.report.study"):
        study = load_study(tmp_path)
    assert len(study.records) == len(recs)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert "\n" not in text and text.startswith("leaving out 2 corrupt run records: ")
    assert "bad-json: " in text and "cannot read JSON" in text
    assert "no-record: " in text and "does not exist but its run directory holds DONE" in text
    md = build_report(tmp_path).read_text()
    assert "bad-json" not in md and "no-record" not in md


def test_study_dir_errors(tmp_path):
    with pytest.raises(DataError, match="is not a study directory"):
        load_study(tmp_path)
    (tmp_path / "runs" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="no finished runs"):
        load_study(tmp_path)
    (tmp_path / "runs" / "x" / "DONE").write_text("")
    assert "does not exist but its run directory holds DONE" in read_records(tmp_path).corrupt["x"]
    with pytest.raises(DataError, match="no finished runs"):  # a corrupt run is not finished
        load_study(tmp_path)
    (tmp_path / "runs" / "x" / "record.json").write_text("{not json")
    assert "cannot read JSON" in read_records(tmp_path).corrupt["x"]


def test_old_schema_study_is_refused_in_one_line(tmp_path):
    records = difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4)
    records[1]["schema"] = 1
    write_study(tmp_path, records)
    with pytest.raises(RecordSchemaError) as info:
        load_study(tmp_path)
    message = str(info.value)
    assert "\n" not in message and f"1 of the {len(records)} finished runs" in message
    assert "record schema 1" in message and "re-run the study" in message


def test_only_failed_runs_still_report(tmp_path):
    write_study(tmp_path, [failed_record("t:0", "full", 0, "OSError: disk full")])
    md = build_report(tmp_path).read_text()
    assert "OSError: disk full" in md and "No figure: no complete run." in md
    assert "**Claim 1: cannot be tested.**" in md


def test_cli_report(tmp_path, capsys):
    write_study(tmp_path / "s", difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4))
    assert main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == [str(tmp_path / "out" / "report.md"), str(tmp_path / "out" / "report.html")]
    assert (tmp_path / "out" / "results.csv").is_file()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a study directory" in capsys.readouterr().err


def test_cli_report_level_sets_the_significance_level(tmp_path, capsys):
    """``--level`` reaches the claims and the statistics table; the old ``--alpha`` (alpha
    names only the interpolation weight) is refused in one line that names the new flag."""
    write_study(tmp_path / "s", difficulty_study(lambda ss, acs, zs: 0.4 * ss, n_tasks=4))
    assert (
        main(["report", str(tmp_path / "s"), "--out", str(tmp_path / "a"), "--level", "0.2"]) == 0
    )
    md = (tmp_path / "a" / "report.md").read_text()
    assert "**sig.**: Kendall τ p < 0.2 (two-sided" in md and "80% bootstrap interval" in md
    assert "p < 0.05 (two-sided" not in md
    capsys.readouterr()
    assert main(["report", str(tmp_path / "s"), "--alpha", "0.01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--alpha is now --level (the significance level)" in err[0], err
    assert main(["report", str(tmp_path / "s"), "--level", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: claims.level is 1.5; expected a number in (0, 1)"], err
    assert not (tmp_path / "s" / "report").exists()


def test_formatting():
    assert num(-0.0001) == "0.000" and num(0.12345, signed=True) == "+0.123"
    assert num(float("nan")) == "—" and pval(0.0371) == "0.037" and pval(2e-6) == "2.0e-06"


def test_golden_claims_list_every_claim_once(golden):
    analysis = analyse(load_study(golden))
    assert [c.key for c in analysis.claims] == ["1", "2", "3a", "3b", "3c", "3d"]
    assert all(isinstance(c.status, Status) for c in analysis.claims)
    md = (golden / "report" / "report.md").read_text()
    assert "## Limited data" not in md  # every run used all training images


def test_several_presets_are_separate_claim_groups(tmp_path):
    records = []
    for preset, profile in (("paper", CLAIM3_FAILS), ("tuned", CLAIM3_HOLDS)):
        for rec in method_study(profile):
            rec.update(preset=preset, run_id=rec["run_id"] + preset)
            records.append(rec)
    analysis = analyse(load_study(write_study(tmp_path, records)))
    claims = {c.key: c for c in analysis.claims}
    assert list(claims)[:4] == ["1 [paper]", "1 [tuned]", "2 [paper]", "2 [tuned]"]
    assert claims["3a [paper]"].status == FAILS and claims["3a [tuned]"].status == HOLDS
    tuned = analysis.means["paper methods [tuned]"].set_index("unit")
    expected = np.mean(
        [r["delta_id"] for r in records if r["task"] == "t:0" and r["preset"] == "tuned"]
    )
    assert tuned.at["t:0", "delta_id"] == pytest.approx(expected, abs=1e-12)
    md = to_markdown(method_section(analysis.methods, analysis.cells))
    assert "| A-CLIP/tuned | 10 | 10 |" in md and "| A-CLIP/paper | 10 | 10 |" in md


# ---------------------------------------------------------------------------------------------
# What a reader works with: long format, absolute accuracies, hyperparameters, links, contents
# ---------------------------------------------------------------------------------------------


def expected_long_rows(rec: dict) -> dict[tuple[str, str, str, str], float]:
    """(run_id, metric, dataset, role) -> value, straight from a record's JSON dict."""
    zs, ft, rid = rec["zero_shot"], rec["finetuned"], rec["run_id"]
    rows = {
        (rid, "zero_shot", rec["task"], "id"): zs["id"],
        (rid, "finetuned", rec["task"], "id"): ft["id"],
        (rid, "delta", rec["task"], "id"): ft["id"] - zs["id"],
    }
    for role, change in (("dg", "delta"), ("control", "cf")):
        for name, before in zs[role].items():
            rows[(rid, "zero_shot", name, role)] = before
            rows[(rid, "finetuned", name, role)] = ft[role][name]
            rows[(rid, change, name, role)] = ft[role][name] - before
    return rows


def test_results_long_has_one_row_per_run_metric_dataset(golden):
    long = pd.read_csv(golden / "report" / "results_long.csv", dtype={"shots": str})
    assert list(long.columns) == [
        "run_id", "task", "method", "seed", "preset", "shots", "model", "metric", "dataset",
        "role", "value",
    ]  # fmt: skip
    records, _ = golden_records()
    done = [r for r in records if r["status"] == "complete"]
    expected = {}
    for rec in done:
        expected.update(expected_long_rows(rec))
    # 60 runs x (3 ID + 3 per DG domain + 3 per control task), failed run absent
    n_dg = sum(len(r["zero_shot"]["dg"]) for r in done)
    assert len(long) == len(expected) == 3 * len(done) + 3 * n_dg + 3 * 4 * len(done)
    got = {(r.run_id, r.metric, r.dataset, r.role): r.value for r in long.itertuples(index=False)}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(v, abs=1e-12) for k, v in expected.items())
    by_id = {r["run_id"]: r for r in done}
    for row in long.drop_duplicates("run_id").itertuples(index=False):
        rec = by_id[row.run_id]
        assert (row.task, row.method, row.seed, row.preset, row.shots, row.model) == (
            rec["task"], rec["method"], rec["seed"], rec["preset"], "all", rec["model"]
        )  # fmt: skip
    assert set(long["metric"]) == {"zero_shot", "finetuned", "delta", "cf"}
    assert set(long.loc[long["metric"] == "cf", "role"]) == {"control"}


def test_results_long_parquet_equals_csv(golden):
    csv = pd.read_csv(golden / "report" / "results_long.csv", dtype={"shots": str})
    parquet = pd.read_parquet(golden / "report" / "results_long.parquet")
    assert parquet["seed"].dtype == np.int64 and parquet["value"].dtype == np.float64
    pd.testing.assert_frame_equal(parquet, csv, check_exact=False, rtol=0, atol=1e-15)


def test_results_csv_has_mean_accuracies(golden):
    frame = pd.read_csv(golden / "report" / "results.csv").set_index("run_id")
    records, _ = golden_records()
    for rec in [r for r in records if r["status"] == "complete"][::5]:
        row, zs, ft = frame.loc[rec["run_id"]], rec["zero_shot"], rec["finetuned"]
        assert row["zs_control_mean"] == pytest.approx(np.mean(list(zs["control"].values())))
        assert row["ft_control_mean"] == pytest.approx(np.mean(list(ft["control"].values())))
        if zs["dg"]:
            assert row["ft_dg_mean"] == pytest.approx(np.mean(list(ft["dg"].values())))
            assert row["ft_dg_mean"] - row["zs_dg_mean"] == pytest.approx(rec["delta_dg"])
        else:
            assert np.isnan(row["zs_dg_mean"]) and np.isnan(row["ft_dg_mean"])


def md_table_after(md: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading`` (header row first)."""
    lines = md.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return [rows[0], *rows[2:]]


def test_absolute_accuracies_next_to_deltas(golden):
    md = (golden / "report" / "report.md").read_text()
    head, *rows = md_table_after(md, "### Accuracies per task and method")
    assert head[3:9] == [
        "zero-shot ID", "fine-tuned ID", "dID", "zero-shot DG", "fine-tuned DG", "dDG",
    ]  # fmt: skip
    assert len(rows) == 30
    records, _ = golden_records()
    row = next(r for r in rows if r[:2] == ["`world:shapes`", "BitFit"])
    mine = [r for r in records if (r["task"], r["method"]) == ("world:shapes", "bitfit")]
    ft_id = np.mean([r["finetuned"]["id"] for r in mine])
    ft_dg = np.mean([np.mean(list(r["finetuned"]["dg"].values())) for r in mine])
    ft_control = np.mean([np.mean(list(r["finetuned"]["control"].values())) for r in mine])
    assert row[2] == "2" and row[3] == num(0.71) and row[4] == num(ft_id)
    assert row[5] == num(ft_id - 0.71, signed=True)
    assert row[7] == num(ft_dg) and row[10] == num(ft_control)


def test_runs_table_shows_every_runs_hyperparameters(tmp_path):
    base = dict(ss=0.3, acs=0.2, zs_acc=0.4, d_id=0.1)
    good = simple_record("t:a", "lora", 0, **base)
    good.update(best_epoch=3, val_accuracy=0.62, val_accuracy_start=0.31)
    good["config"] = {"train": {"optimizer": "adamw", "lr": 3e-4, "batch_size": 64, "epochs": 5}}
    other = simple_record("t:a", "full", 1, **base, shots=8)
    other["config"] = {"train": {"optimizer": "sgd", "lr": 1e-6, "batch_size": 128, "epochs": 2}}
    failed = failed_record("t:b", "bitfit", 2, "TrainingError: boom")
    study = write_study(tmp_path / "study", [good, other, failed])
    build_report(study)
    md = (study / "report" / "report.md").read_text()
    head, *rows = md_table_after(md, "## Runs and hyperparameters")
    assert head == [
        "run", "task", "method", "seed", "preset", "shots", "status", "optimizer", "lr", "batch",
        "epochs", "best epoch", "val accuracy (start → best)",
    ]  # fmt: skip
    assert [r[0] for r in rows] == [f"`{other['run_id']}`", f"`{good['run_id']}`",
                                    f"`{failed['run_id']}`"]  # fmt: skip
    assert rows[0][2:] == ["full", "1", "tuned", "8", "complete", "sgd", "1e-06", "128", "2",
                           "2", "— → 0.500"]  # fmt: skip
    assert rows[1][2:] == ["LoRA", "0", "tuned", "all", "complete", "adamw", "0.0003", "64", "5",
                           "3", "0.310 → 0.620"]  # fmt: skip
    assert rows[2][2:] == ["BitFit", "2", "tuned", "all", "failed"] + ["—"] * 6


def test_report_links_its_data_files(golden):
    report = golden / "report"
    md = (report / "report.md").read_text()
    page = (report / "report.html").read_text()
    for name in ("results.csv", "results_long.csv", "results_long.parquet"):
        assert (report / name).is_file()
        assert f"[{name}]({name})" in md and f'<a href="{name}">{name}</a>' in page


def test_html_contents_link_to_every_section(golden):
    page = (golden / "report" / "report.html").read_text()
    ids = re.findall(r'<h[23] id="([^"]+)"', page)
    assert len(ids) == len(set(ids)) >= 10
    nav = page.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
    targets = re.findall(r'href="#([^"]+)"', nav)
    assert targets == [i for i in ids if i != "contents"]
    assert "task-difficulty" in targets and "runs-and-hyperparameters" in targets
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)
    assert headings[0] == "Contents" and "Failed runs" in headings


def test_html_mean_rows_stay_in_the_footer(golden):
    page = (golden / "report" / "report.html").read_text()
    footers = re.findall(r"<tfoot>(.*?)</tfoot>", page)
    assert len(footers) == 3 and all("mean over tasks" in f for f in footers)
    bodies = re.findall(r"<tbody>(.*?)</tbody>", page)
    assert not any("mean over tasks" in b for b in bodies)


def test_scatter_labels_name_tasks():
    from matplotlib.figure import Figure

    from clipgap.report.figures.canvas import MAX_LABELS, label_points, short_names

    assert short_names(["world:a", "world:b"]) == {"world:a": "a", "world:b": "b"}
    assert short_names(["world:a", "tv:b"]) == {"world:a": "world:a", "tv:b": "tv:b"}
    ax = Figure().subplots()
    ax.scatter([0, 1, 1.01], [0, 1, 1.0])
    assert label_points(ax, [0, 1, 1.01, np.nan], [0, 1, 1.0, 2], ["a", "b", "c", "d"]) == 3
    assert sorted(t.get_text().strip() for t in ax.texts) == ["a", "b", "c"]
    b, c = (t for t in ax.texts if t.get_text().strip() in "bc")
    renderer = ax.figure.canvas.get_renderer()
    assert not b.get_window_extent(renderer).overlaps(c.get_window_extent(renderer))
    many = Figure().subplots()
    n = MAX_LABELS + 1
    assert label_points(many, list(range(n)), list(range(n)), ["x"] * n) == 0
