"""Run hashes are the names of finished runs: a refactor must not change them.

``tests/data/run_hashes.json`` holds the run directory names (hash included) that the landed
code planned for fixed study configs and ``clipgap finetune`` arguments before the run spec was
made typed. Planning the same configs now must give the same names, in the same order. The
cases on the world `tuned` preset were re-pinned once, when the preset's settings were
re-derived by `configs/world-tune.yaml` (their learning rates, and so their hashes, changed; the
names before the hash did not).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from clipgap.cli.finetune import resolve
from clipgap.study.config import load_study_config
from clipgap.study.plan import plan_runs

ROOT = Path(__file__).resolve().parents[1]
PINNED = json.loads((ROOT / "tests" / "data" / "run_hashes.json").read_text())


@pytest.mark.parametrize("name", sorted(PINNED["studies"]))
def test_study_run_hashes_unchanged(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    case = PINNED["studies"][name]
    cfg = load_study_config(case["config"], case["overrides"])
    assert [run.dirname for run in plan_runs(cfg)] == case["runs"]


@pytest.mark.parametrize("case", PINNED["finetune"], ids=lambda c: c["dirname"])
def test_finetune_run_hashes_unchanged(case):
    args = argparse.Namespace(model="world", pretrained=None, device="cpu", **case["args"])
    assert resolve(args).dirname == case["dirname"]
