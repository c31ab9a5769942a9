"""open_clip <-> Hugging Face ``CLIPModel`` weight conversion for standard CLIP models.

Supported: an open_clip ``CLIP`` with a ViT image tower (class token, ``ln_pre``, ``ln_post``,
projection matrix) and the built-in causal text transformer (``ln_final``, projection matrix),
plain pre-LN residual blocks (fused ``in_proj`` attention, no layer scale, no extra norms) and
GELU or QuickGELU. Anything else raises :class:`~clipgap.errors.ModelError` naming the feature.

Text pooling: open_clip pools the text tower at ``text.argmax(-1)`` (the EOT token has the largest
id). HF ``CLIPTextModel`` pools at ``input_ids.argmax(-1)`` exactly when the text config has
``eos_token_id == 2`` (its legacy path, the value in the ``openai/clip-vit-*`` checkpoints on the
hub), else at the first ``eos_token_id``. The converted config therefore sets
``eos_token_id = 2``: the same argmax pooling as open_clip for every input, not only for
open_clip-tokenized ones. (An open_clip model with ``pool_type="eos"`` keeps its EOS id.)
"""

from __future__ import annotations

import torch
from torch import nn

from clipgap.errors import ModelError

HF_ARGMAX_POOLING_EOS_ID = 2  # HF CLIPTextModel pools at input_ids.argmax(-1) for this eos id

_QKV = ("q", "k", "v")
# per-block (open_clip suffix, HF suffix); ``{}`` in a fused key takes q/k/v
_BLOCK_KEYS = [
    ("attn.in_proj_weight", "self_attn.{}_proj.weight"),
    ("attn.in_proj_bias", "self_attn.{}_proj.bias"),
    ("attn.out_proj.weight", "self_attn.out_proj.weight"),
    ("attn.out_proj.bias", "self_attn.out_proj.bias"),
    ("ln_1.weight", "layer_norm1.weight"),
    ("ln_1.bias", "layer_norm1.bias"),
    ("ln_2.weight", "layer_norm2.weight"),
    ("ln_2.bias", "layer_norm2.bias"),
    ("mlp.c_fc.weight", "mlp.fc1.weight"),
    ("mlp.c_fc.bias", "mlp.fc1.bias"),
    ("mlp.c_proj.weight", "mlp.fc2.weight"),
    ("mlp.c_proj.bias", "mlp.fc2.bias"),
]
# (open_clip key, HF key, op): "copy", "T" (transpose) or "scalar"
_GLOBAL_KEYS = [
    ("visual.class_embedding", "vision_model.embeddings.class_embedding", "copy"),
    ("visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", "copy"),
    ("visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", "copy"),
    ("visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", "copy"),
    ("visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", "copy"),
    ("visual.ln_post.weight", "vision_model.post_layernorm.weight", "copy"),
    ("visual.ln_post.bias", "vision_model.post_layernorm.bias", "copy"),
    ("visual.proj", "visual_projection.weight", "T"),
    ("token_embedding.weight", "text_model.embeddings.token_embedding.weight", "copy"),
    ("positional_embedding", "text_model.embeddings.position_embedding.weight", "copy"),
    ("ln_final.weight", "text_model.final_layer_norm.weight", "copy"),
    ("ln_final.bias", "text_model.final_layer_norm.bias", "copy"),
    ("text_projection", "text_projection.weight", "T"),
    ("logit_scale", "logit_scale", "scalar"),
]
# the open_clip -> HF direction; "T" and "scalar" also invert themselves for 2-D / scalar tensors
_OPS = {"copy": lambda t: t, "T": lambda t: t.T, "scalar": lambda t: t.reshape(())}
_TOWERS = (
    ("visual.transformer.resblocks", "vision_model.encoder.layers"),
    ("transformer.resblocks", "text_model.encoder.layers"),
)


def _key_map(n_vision: int, n_text: int) -> list[tuple[str, str, str]]:
    """Every (open_clip key, HF key or pattern, op) pair; op "qkv" splits a fused tensor."""
    pairs = list(_GLOBAL_KEYS)
    for (oc_prefix, hf_prefix), n in zip(_TOWERS, (n_vision, n_text), strict=True):
        for i in range(n):
            for oc, hf in _BLOCK_KEYS:
                op = "qkv" if "{}" in hf else "copy"
                pairs.append((f"{oc_prefix}.{i}.{oc}", f"{hf_prefix}.{i}.{hf}", op))
    return pairs


def open_clip_state_to_hf(state: dict, n_vision: int, n_text: int) -> dict[str, torch.Tensor]:
    """Rename/reshape an open_clip CLIP state dict into HF ``CLIPModel`` keys (every key used)."""
    out: dict[str, torch.Tensor] = {}
    for oc, hf, op in _key_map(n_vision, n_text):
        if oc not in state:
            raise ModelError(f"open_clip state dict lacks {oc!r} (not a standard ViT CLIP)")
        t = state[oc].detach().clone()
        if op == "qkv":
            for role, chunk in zip(_QKV, t.chunk(3, dim=0), strict=True):
                out[hf.format(role)] = chunk.contiguous()
        else:
            out[hf] = _OPS[op](t).contiguous()
    used = {oc for oc, _, _ in _key_map(n_vision, n_text)}
    extra = sorted(set(state) - used - {"attn_mask"})
    if extra:
        raise ModelError(
            f"open_clip parameters with no HF CLIP counterpart: {', '.join(extra[:5])}"
        )
    return out


def hf_state_to_open_clip(state: dict, n_vision: int, n_text: int) -> dict[str, torch.Tensor]:
    """The inverse of :func:`open_clip_state_to_hf` (q/k/v re-fused into ``in_proj``)."""
    out: dict[str, torch.Tensor] = {}
    for oc, hf, op in _key_map(n_vision, n_text):
        try:
            if op == "qkv":
                out[oc] = torch.cat([state[hf.format(r)] for r in _QKV], dim=0).clone()
            else:
                t = state[hf].detach()
                out[oc] = _OPS[op](t).contiguous().clone()
        except KeyError as exc:
            raise ModelError(f"HF CLIP state dict lacks {exc.args[0]!r}") from None
    return out


def act_name(tower: str, blocks) -> str:
    names = set()
    for block in blocks:
        act = block.mlp.gelu
        if type(act).__name__ == "QuickGELU":
            names.add("quick_gelu")
        elif isinstance(act, nn.GELU):
            names.add("gelu" if act.approximate == "none" else "gelu_pytorch_tanh")
        else:
            raise ModelError(f"{tower} tower activation {type(act).__name__} has no HF CLIP name")
    if len(names) != 1:
        raise ModelError(f"{tower} tower mixes activations {sorted(names)}")
    return names.pop()


def _check_blocks(tower: str, blocks) -> None:
    for i, block in enumerate(blocks):
        attn = block.attn
        plain = (
            type(block).__name__ == "ResidualAttentionBlock"
            and isinstance(attn, nn.MultiheadAttention)
            and attn.in_proj_weight is not None
            and attn.in_proj_bias is not None
            and isinstance(block.ls_1, nn.Identity)
            and isinstance(block.ls_2, nn.Identity)
            and set(dict(block.mlp.named_children())) == {"c_fc", "gelu", "c_proj"}
        )
        if not plain:
            raise ModelError(
                f"{tower} block {i} is not a plain CLIP block (fused biased in_proj, no layer "
                "scale, no extra norms); cannot convert to HF CLIP"
            )


def _layer_norm_eps(tower: str, norms: list[nn.Module]) -> float:
    eps = {float(n.eps) for n in norms}
    if len(eps) != 1:
        raise ModelError(f"{tower} tower LayerNorms use different eps {sorted(eps)}")
    return eps.pop()


def _check_supported(model: nn.Module) -> None:
    visual = getattr(model, "visual", None)
    if type(visual).__name__ != "VisionTransformer" or not hasattr(model, "token_embedding"):
        raise ModelError(
            f"only open_clip CLIP with a ViT image tower and built-in text tower converts to HF "
            f"(got {type(model).__name__} with {type(visual).__name__} image tower)"
        )
    problems = {
        "attentional pooling": visual.attn_pool is not None,
        f"image pool_type {visual.pool_type!r} (need 'tok')": visual.pool_type != "tok",
        "final_ln_after_pool": bool(visual.final_ln_after_pool),
        "no ln_pre": isinstance(visual.ln_pre, nn.Identity),
        "non-square image or patch size": len({*visual.image_size}) != 1
        or len({*visual.patch_size}) != 1,
        "text projection as nn.Linear": not isinstance(model.text_projection, nn.Parameter),
        "non-causal text tower": getattr(model, "attn_mask", None) is None,
        f"text pool_type {model.text_pool_type!r}": model.text_pool_type not in ("argmax", "eos"),
        "logit_bias (SigLIP-style)": getattr(model, "logit_bias", None) is not None,
    }
    bad = [name for name, hit in problems.items() if hit]
    if bad:
        raise ModelError(f"open_clip model cannot be expressed as HF CLIPModel: {', '.join(bad)}")
    _check_blocks("image", visual.transformer.resblocks)
    _check_blocks("text", model.transformer.resblocks)


def _tower_config(tower: str, trunk, norms: list[nn.Module], embed_dim: int) -> dict:
    block = trunk.resblocks[0]
    return {
        "hidden_size": int(trunk.width),
        "intermediate_size": int(block.mlp.c_fc.out_features),
        "projection_dim": int(embed_dim),
        "num_hidden_layers": len(trunk.resblocks),
        "num_attention_heads": int(block.attn.num_heads),
        "hidden_act": act_name(tower, trunk.resblocks),
        "layer_norm_eps": _layer_norm_eps(
            tower, norms + [m for b in trunk.resblocks for m in (b.ln_1, b.ln_2)]
        ),
    }


def open_clip_to_hf(oc_model: nn.Module):
    """Convert an open_clip ``CLIP`` to ``(transformers.CLIPConfig, HF state dict)``.

    ``CLIPModel(config).load_state_dict(state)`` then computes the same embeddings (float32
    round-off aside). Raises ModelError for architectures HF ``CLIPModel`` cannot express.
    """
    from transformers import CLIPConfig

    _check_supported(oc_model)
    visual = oc_model.visual
    embed_dim = int(oc_model.text_projection.shape[1])
    vision = _tower_config("image", visual.transformer, [visual.ln_pre, visual.ln_post], embed_dim)
    vision.update(
        num_channels=int(visual.conv1.in_channels),
        image_size=int(visual.image_size[0]),
        patch_size=int(visual.patch_size[0]),
    )
    text = _tower_config("text", oc_model.transformer, [oc_model.ln_final], embed_dim)
    vocab = int(oc_model.vocab_size)
    eos = HF_ARGMAX_POOLING_EOS_ID
    if oc_model.text_pool_type == "eos":
        eos = int(oc_model.text_eos_id)
        if eos == HF_ARGMAX_POOLING_EOS_ID:
            raise ModelError(f"text pool_type 'eos' with eos_id {eos} is read as argmax by HF")
    text.update(
        vocab_size=vocab,
        max_position_embeddings=int(oc_model.context_length),
        bos_token_id=vocab - 2,
        eos_token_id=eos,
        pad_token_id=0,
    )
    logit_scale = float(oc_model.logit_scale.detach().reshape(-1)[0])
    config = CLIPConfig(
        text_config=text,
        vision_config=vision,
        projection_dim=embed_dim,
        logit_scale_init_value=logit_scale,
    )
    n_vision, n_text = len(visual.transformer.resblocks), len(oc_model.transformer.resblocks)
    return config, open_clip_state_to_hf(oc_model.state_dict(), n_vision, n_text)


def hf_to_open_clip(hf_model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict for the open_clip CLIP of the same architecture as HF ``CLIPModel`` ``hf_model``."""
    cfg = hf_model.config
    return hf_state_to_open_clip(
        hf_model.state_dict(),
        cfg.vision_config.num_hidden_layers,
        cfg.text_config.num_hidden_layers,
    )
