"""Contracts every registered fine-tuning method keeps on both backbone kinds.

Every method in :data:`clipgap.methods.methods` x {the tiny open_clip CLIP, the same weights as a
tiny Hugging Face ``CLIPModel`` loaded as ``hf:DIR``}: one optimiser step changes only what the
method declares trainable; output shapes stay; a checkpoint reproduces the logits exactly; the
model starts at zero-shot where its init says so; the trainable count is the spec's.

What each method may change and how many scalars it trains is derived here from the science
spec's table (docs/science.md, "Fine-tuning methods") and the backbone's own parameter names and
shapes, never from the method's code (``projection_sites``, ``block_biases``,
``count_trainable``), so a method that trains the wrong tensors or counts wrongly fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from clipgap.backbones import Backbone, load_backbone
from clipgap.checkpoint import load_checkpoint, save_checkpoint
from clipgap.data import load_task
from clipgap.export import save_open_clip_as_hf
from clipgap.methods import apply_method, count_trainable, method_names
from clipgap.methods.lora import lora_deltas
from clipgap.model import AdaptedModel, clone
from clipgap.training import TrainConfig, finetune, zero_shot_model
from tests.conftest import make_image_folder

pytestmark = pytest.mark.usefixtures("one_thread")

PAPER_AND_EXTRA = {"full", "aclip", "bitfit", "lora", "clip_adapter", "linear_probe"}
KINDS = ["open_clip", "hf"]
RANK = 4  # the spec's default LoRA rank
LR = 0.5  # high, so that every update that reaches a tensor shows in float32
OTHER_CLASSES = ["bird", "fish", "tree", "car"]  # not the task's: the zero-shot-style path

# ---- the backbones' anatomy, from parameter names and shapes --------------------------------
BLOCK = {
    "open_clip": re.compile(r"(^|\.)transformer\.resblocks\.\d+\."),
    "hf": re.compile(r"_model\.encoder\.layers\.\d+\."),
}
HF_QKV = re.compile(r"\.self_attn\.([qkv])_proj\.weight$")


def qkv_rows(kind: str, name: str, shape: tuple[int, ...]) -> dict[str, slice]:
    """Rows of an attention input projection weight by role (q, k, v); {} for other tensors.

    open_clip packs Q, K, V into one ``attn.in_proj_weight`` of shape (3d, d); Hugging Face
    keeps ``q_proj`` / ``k_proj`` / ``v_proj`` apart.
    """
    if not BLOCK[kind].search(name):
        return {}
    if kind == "open_clip":
        if not name.endswith(".attn.in_proj_weight"):
            return {}
        d = shape[1]
        assert shape[0] == 3 * d, name
        return {"q": slice(0, d), "k": slice(d, 2 * d), "v": slice(2 * d, 3 * d)}
    match = HF_QKV.search(name)
    return {match.group(1): slice(0, shape[0])} if match else {}


def in_block_bias(kind: str, name: str) -> bool:
    """A bias inside a residual block of either tower (not ln_pre / ln_post / ln_final)."""
    return bool(BLOCK[kind].search(name)) and name.endswith("bias")


# ---- the spec: which backbone rows may change, what is added, where training starts ---------
WHOLE = [Ellipsis]  # the whole tensor (also a 0-dim one such as logit_scale)


@dataclass(frozen=True)
class Spec:
    """``rows(kind, name, shape)``: the rows of backbone parameter ``name`` a step may change
    (``[]`` frozen, ``WHOLE`` the whole tensor, trained as itself). ``added(backbone, kind,
    n_classes)``: trainable scalars the method adds beside the backbone's own parameters.
    ``start``: where the logits start, see :func:`rounding_only`."""

    rows: Callable[[str, str, tuple], list]  # of slices, or WHOLE
    added: Callable[[Backbone, str, int], int]
    start: str  # "zero_shot" (see rounding_only for where only to float rounding) or "differs"


def _none(*_) -> int:
    return 0


def _lora_added(backbone: Backbone, kind: str, n_classes: int) -> int:
    """r x (out + in) per Q and V projection of every block of both towers (A: r x in, B: out x r)."""
    total = 0
    for name, p in backbone.named_parameters():
        rows = qkv_rows(kind, name, tuple(p.shape))
        total += sum(RANK * (rows[r].stop - rows[r].start + p.shape[1]) for r in "qv" if r in rows)
    return total


def _adapter_added(backbone: Backbone, kind: str, n_classes: int) -> int:
    d = int(backbone.embed_dim)
    return 2 * (d * (d // 4) + (d // 4) * d)  # image + text; two bias-free Linear layers each


def _probe_added(backbone: Backbone, kind: str, n_classes: int) -> int:
    return int(backbone.embed_dim) * n_classes + n_classes


SPECS: dict[str, Spec] = {
    "full": Spec(lambda k, n, s: WHOLE, _none, "zero_shot"),
    "aclip": Spec(lambda k, n, s: WHOLE if qkv_rows(k, n, s) else [], _none, "zero_shot"),
    "bitfit": Spec(lambda k, n, s: WHOLE if in_block_bias(k, n) else [], _none, "zero_shot"),
    "lora": Spec(
        lambda k, n, s: [r for role, r in qkv_rows(k, n, s).items() if role in "qv"],
        _lora_added,
        "zero_shot",
    ),
    "clip_adapter": Spec(lambda k, n, s: [], _adapter_added, "differs"),
    "linear_probe": Spec(lambda k, n, s: [], _probe_added, "zero_shot"),
}


def spec_of(method: str) -> Spec:
    if method not in SPECS:
        pytest.fail(f"method {method!r} is registered but has no contract in {__name__}.SPECS")
    return SPECS[method]


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_tiny(tiny, tmp_path_factory):
    """The tiny open_clip model converted to a Hugging Face CLIPModel directory and reloaded."""
    return load_backbone(f"hf:{save_open_clip_as_hf(tiny, tmp_path_factory.mktemp('hf') / 'tiny')}")


@pytest.fixture(scope="module", params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def backbone(kind, request) -> Backbone:
    """The untouched backbone of this kind (shared: tests clone it before changing anything)."""
    return request.getfixturevalue("tiny" if kind == "open_clip" else "hf_tiny")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A folder task: 3 colour-coded classes x 4 images of 32 x 32."""
    root = tmp_path_factory.mktemp("task")
    make_image_folder(root / "train", per_class=4, seed=1)
    make_image_folder(root / "test", per_class=1, seed=2)
    return load_task(f"folder:{root}", "train")


@pytest.fixture(scope="module")
def pixels(backbone, task) -> torch.Tensor:
    return torch.stack([backbone.transform(task.images.load(i)) for i in range(len(task))])


def applied(backbone: Backbone, method: str, task) -> AdaptedModel:
    model = AdaptedModel(clone(backbone))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        apply_method(model, method, class_names=task.class_names, templates=task.templates)
    return model


def logits(model: AdaptedModel, pixels, names, templates) -> torch.Tensor:
    with torch.no_grad():
        return model.logits(model.image_features(pixels), names, templates)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every named parameter and buffer, detached copies."""
    items = [*model.named_parameters(), *model.named_buffers()]
    return {n: t.detach().clone() for n, t in items}


def effective(backbone: Backbone, names: list[str]) -> dict[str, torch.Tensor]:
    """The values the forward pass uses for the original backbone tensors ``names`` (through
    any parametrisation, e.g. LoRA's ``W + scale * B @ A``)."""
    out = {}
    for name in names:
        owner, _, attr = name.rpartition(".")
        out[name] = getattr(backbone.get_submodule(owner), attr).detach().clone()
    return out


def check_backbone_changes(kind, method, base: Backbone, tuned: Backbone) -> set[str]:
    """Assert every frozen element of the backbone's tensors is bit-identical; return the names
    of the tensors that changed (within the rows the spec lets change)."""
    params = {n for n, _ in base.named_parameters()}
    names = [*params, *(n for n, _ in base.named_buffers())]
    before, after = effective(base, names), effective(tuned, names)
    changed = set()
    for name in names:
        frozen = torch.ones_like(before[name], dtype=torch.bool)
        if name in params:
            for rows in spec_of(method).rows(kind, name, tuple(before[name].shape)):
                frozen[rows] = False
        assert torch.equal(before[name][frozen], after[name][frozen]), f"{name} is frozen"
        if not torch.equal(before[name], after[name]):
            changed.add(name)
    return changed


# ---- the contracts -------------------------------------------------------------------------
def test_the_registry_holds_the_paper_methods_and_each_has_a_contract():
    assert set(method_names()) >= PAPER_AND_EXTRA
    assert set(method_names()) <= set(SPECS)


@pytest.mark.parametrize("method", method_names())
def test_one_step_changes_only_what_the_method_declares(backbone, kind, pixels, task, method):
    model = applied(backbone, method, task)
    declared = model.trainable_parameters()
    before = state(model)
    model.train()
    feats = model.image_features(pixels)
    loss = F.cross_entropy(
        model.logits(feats, task.class_names, task.templates), torch.as_tensor(task.labels)
    )
    loss.backward()
    assert all(p.grad is not None for p in declared.values()), "a trainable tensor gets no grad"
    torch.optim.SGD(declared.values(), lr=LR).step()
    after = state(model)
    assert before.keys() == after.keys()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "one step changed nothing"
    assert changed <= set(declared), f"changed but frozen: {sorted(changed - set(declared))}"
    touched = check_backbone_changes(kind, method, backbone, model.backbone)
    assert bool(touched) == any(
        spec_of(method).rows(kind, n, tuple(p.shape)) for n, p in backbone.named_parameters()
    ), "the backbone must change exactly when the spec trains some of it"


@pytest.mark.parametrize("method", method_names())
def test_trainable_count_is_the_spec_count(backbone, kind, task, method):
    spec = spec_of(method)
    whole = {
        f"backbone.{n}": p.numel()
        for n, p in backbone.named_parameters()
        if spec.rows(kind, n, tuple(p.shape)) == WHOLE
    }
    model = applied(backbone, method, task)
    trainable = model.trainable_parameters()
    assert {n for n in trainable if n in whole} == set(whole)
    added = sum(p.numel() for n, p in trainable.items() if n not in whole)
    assert added == spec.added(backbone, kind, task.n_classes)
    expected = sum(whole.values()) + added
    assert model.n_trainable == expected > 0
    one_class = sum(whole.values()) + spec.added(backbone, kind, 1)
    assert count_trainable(backbone, method) == one_class


@pytest.mark.parametrize("method", method_names())
def test_output_shapes_are_unchanged(backbone, pixels, task, method):
    model = applied(backbone, method, task)
    zs = zero_shot_model(clone(backbone))
    n, d = len(pixels), int(backbone.embed_dim)
    with torch.no_grad():
        f, f0 = model.image_features(pixels), zs.image_features(pixels)
        assert f.shape == f0.shape == (n, d)
        torch.testing.assert_close(f.norm(dim=-1), torch.ones(n))
        text = model.class_text_features(task.class_names, task.templates)
        assert text.shape == (task.n_classes, d)
        for names in (task.class_names, OTHER_CLASSES):
            out = model.logits(f, names, task.templates)
            assert out.shape == zs.logits(f0, names, task.templates).shape == (n, len(names))
            assert out.dtype == torch.float32 and torch.isfinite(out).all()


def rounding_only(kind: str, method: str, backbone: Backbone) -> bool:
    """Whether a method that starts at zero-shot does so only up to float rounding.

    - A linear head computes ``f @ (s T)^T``, zero-shot ``s (f @ T^T)``: other rounding order.
    - open_clip's text tower runs PyTorch's slow attention path (its causal mask is a float
      mask) on a non-contiguous input; there ATen's ``matmul`` folds the batch into one ``mm``
      only when the packed ``in_proj_weight`` does not require grad (even under ``no_grad``), so
      training that weight as a whole (full, A-CLIP) changes the kernel, not the maths.
    """
    spec = spec_of(method)
    if spec.added is _probe_added:
        return True
    return kind == "open_clip" and any(
        qkv_rows(kind, n, tuple(p.shape)) and spec.rows(kind, n, tuple(p.shape)) == WHOLE
        for n, p in backbone.named_parameters()
    )


@pytest.mark.parametrize("method", method_names())
def test_start_relative_to_zero_shot(backbone, kind, pixels, task, method):
    own = (task.class_names, task.templates)
    got = logits(applied(backbone, method, task), pixels, *own)
    zero_shot = logits(zero_shot_model(clone(backbone)), pixels, *own)
    if spec_of(method).start == "differs":
        assert not torch.allclose(got, zero_shot, atol=1e-3)
    elif rounding_only(kind, method, backbone):
        # |logits| <= logit_scale.exp() = 14.3 here: 1e-5 is a few float32 ulps at that size
        torch.testing.assert_close(got, zero_shot, rtol=0, atol=1e-5)
    else:
        assert torch.equal(got, zero_shot)


@pytest.mark.parametrize("method", method_names())
def test_finetune_step_then_checkpoint_reproduces_logits(
    backbone, kind, pixels, task, method, tmp_path
):
    fingerprint = backbone.fingerprint()
    cfg = TrainConfig(
        lr=LR, momentum=0.0, weight_decay=0.0, epochs=1, batch_size=len(task), val_fraction=0.0
    )
    result = finetune(backbone, task, method, train=cfg, progress=False)
    assert result.steps == 1
    assert backbone.fingerprint() == fingerprint, "the input backbone was modified"
    model = result.model
    check_backbone_changes(kind, method, backbone, model.backbone)
    path = save_checkpoint(model, tmp_path / "ckpt.safetensors")
    loaded = load_checkpoint(path, clone(backbone), method=method)
    for names in (task.class_names, OTHER_CLASSES):
        expected = logits(model, pixels, names, task.templates)
        assert torch.equal(logits(loaded, pixels, names, task.templates), expected)
    own = (task.class_names, task.templates)
    zero_shot = logits(zero_shot_model(clone(backbone)), pixels, *own)
    assert not torch.allclose(logits(loaded, pixels, *own), zero_shot), "the step did nothing"


def test_checkpoint_rebuilds_its_base_model(backbone, pixels, task, tmp_path):
    """Without a backbone, load_checkpoint rebuilds the base from the stored reference."""
    cfg = TrainConfig(lr=LR, epochs=1, batch_size=len(task), val_fraction=0.0, max_steps=1)
    model = finetune(backbone, task, "lora", train=cfg, progress=False).model
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "ckpt.safetensors"))
    assert type(loaded.backbone) is type(backbone)
    own = (task.class_names, task.templates)
    assert torch.equal(logits(loaded, pixels, *own), logits(model, pixels, *own))


# ---- the documented inits ------------------------------------------------------------------
def test_lora_init_is_b_zero_and_small_a(backbone, kind, task):
    model = applied(backbone, "lora", task)
    deltas = lora_deltas(model)
    sites = sum(
        len([r for r in qkv_rows(kind, n, tuple(p.shape)) if r in "qv"]) > 0
        for n, p in backbone.named_parameters()
    )
    assert len(deltas) == sites  # one parametrised weight per projection holding Q or V rows
    a = torch.cat([d.A[r].reshape(-1) for d in deltas for r in d.A])
    for delta in deltas:
        assert delta.scale == 0.2
        for role in delta.B:
            assert delta.A[role].shape[0] == delta.B[role].shape[1] == RANK
            assert torch.equal(delta.B[role], torch.zeros_like(delta.B[role]))
    assert a.mean().abs() < 0.005 and a.std().item() == pytest.approx(0.02, rel=0.1)


def test_linear_probe_init_is_the_zero_shot_head(backbone, task):
    """head.weight = logit_scale.exp() * zero-shot class text features, bias 0.

    Equal to float rounding only on open_clip: the method encodes the class text before it
    freezes the backbone, and the text kernel depends on requires_grad (see rounding_only).
    """
    model = applied(backbone, "linear_probe", task)
    zs = zero_shot_model(clone(backbone))
    with torch.no_grad():
        text = zs.class_text_features(task.class_names, task.templates)
        scale = backbone.logit_scale.exp().float()
    assert model.uses_head(task.class_names) and model.head_classes == task.class_names
    torch.testing.assert_close(model.head.weight, scale * text, rtol=0, atol=1e-5)
    assert torch.equal(model.head.bias, torch.zeros(task.n_classes))


def test_clip_adapter_init_is_the_documented_blend(backbone, pixels, task):
    """Linear(d, d/4, no bias) - ReLU - Linear(d/4, d, no bias) - ReLU on each tower,
    f' = normalise(0.2 adapter(f) + 0.8 f); PyTorch's default Linear init (|w| <= 1/sqrt(fan_in))."""
    model = applied(backbone, "clip_adapter", task)
    d = int(backbone.embed_dim)
    layers = {}
    for tower in ("image", "text"):
        adapter = getattr(model, f"{tower}_adapter")
        linears = [m for m in adapter.modules() if isinstance(m, torch.nn.Linear)]
        assert [tuple(m.weight.shape) for m in linears] == [(d // 4, d), (d, d // 4)]
        assert all(m.bias is None for m in linears)
        for m in linears:
            bound = m.weight.shape[1] ** -0.5
            assert m.weight.abs().max() <= bound and m.weight.std() > bound / 4
        layers[tower] = [m.weight.detach() for m in linears]
    assert not torch.equal(layers["image"][0], layers["text"][0]), "one draw per tower"

    def blend(f, w1, w2):
        f = f / f.norm(dim=-1, keepdim=True)
        g = 0.2 * F.relu(F.relu(f @ w1.T) @ w2.T) + 0.8 * f
        return g / g.norm(dim=-1, keepdim=True)

    zs = zero_shot_model(clone(backbone))
    with torch.no_grad():
        image = blend(backbone.encode_image(pixels), *layers["image"])
        text = blend(zs.class_text_features(task.class_names, task.templates), *layers["text"])
        expected = backbone.logit_scale.exp() * image @ text.T
    got = logits(model, pixels, task.class_names, task.templates)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
