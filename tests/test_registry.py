"""The one plugin mechanism: registries for methods, datasets, backbone schemes and commands."""

from __future__ import annotations

import sys
import types

import pytest

from clipgap.errors import UnknownNameError
from clipgap.registry import Registry


def test_register_sets_the_name_and_refuses_duplicates():
    things = Registry("thing")

    @things.register("alpha")
    class Alpha:
        pass

    assert Alpha.name == "alpha" and things.get("alpha") is Alpha
    with pytest.raises(ValueError, match="thing 'alpha' is registered twice"):
        things.register("alpha")(object)


def test_unknown_name_lists_the_valid_ones():
    things = Registry("thing")
    things.register("circle")(lambda: None)
    with pytest.raises(UnknownNameError, match=r"unknown thing 'circel' \(did you mean 'circle'"):
        things.get("circel")


def test_plugins_load_on_first_use_and_a_missing_module_raises(monkeypatch):
    module = types.ModuleType("clipgap_test_plugin")
    things = Registry("thing", plugins=["clipgap_test_plugin"])
    module.__dict__["loaded"] = things.register("square")(lambda: "square")
    monkeypatch.setitem(sys.modules, "clipgap_test_plugin", module)
    assert things.names() == ["square"]

    broken = Registry("thing", plugins=["clipgap_no_such_plugin_module"])
    with pytest.raises(ImportError, match="clipgap_no_such_plugin_module"):
        broken.names()


def test_every_plugin_kind_uses_the_one_registry():
    from clipgap.backbones import named_models, schemes
    from clipgap.cli.commands import commands
    from clipgap.data import datasets
    from clipgap.methods import methods

    for registry in (methods, datasets, named_models, schemes, commands):
        assert isinstance(registry, Registry)
    assert {"full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"} <= set(methods)
    assert methods.get("lora").name == "lora"
    assert {"folder", "csv", "world", "cifar100"} <= set(datasets)
    assert {"hf", "local-dir"} <= set(schemes)
    assert "world" in named_models
    assert {"difficulty", "finetune", "study", "report", "list"} <= set(commands)
