"""clipgap LoRA as a ``peft`` adapter folder for the Hugging Face ``CLIPModel`` of the base.

clipgap's LoRA adds ``scale * B @ A`` to the Q and V rows of each attention input projection
(open_clip fuses Q, K, V into one ``in_proj_weight``: Q rows ``[0:d]``, V rows ``[2d:3d]``).
HF ``CLIPModel`` has separate ``q_proj`` / ``v_proj`` linears, and peft's LoRA on a linear adds
``(lora_alpha / r) * lora_B @ lora_A``. So each (block, role) update becomes the peft pair
``lora_A = A`` (r, d_in), ``lora_B = B`` (d_out, r) on ``<tower>.encoder.layers.<i>.self_attn.
<role>_proj`` with ``lora_alpha = scale * r``: the same weights, hence the same logits.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch.nn.utils import parametrize

from clipgap.errors import ModelError
from clipgap.export.hf_files import quiet_transformers
from clipgap.methods.lora import LoraDelta
from clipgap.model import AdaptedModel

log = logging.getLogger(__name__)

HF_TOWER = {"image": "vision_model", "text": "text_model"}


def _delta(module, param_name: str) -> LoraDelta | None:
    if not parametrize.is_parametrized(module, param_name):
        return None
    found = [p for p in module.parametrizations[param_name] if isinstance(p, LoraDelta)]
    return found[0] if found else None


def lora_weights(model: AdaptedModel) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{HF module name: (A, B)}`` for every LoRA update of a LoRA-tuned model."""
    out = {}
    for site in model.backbone.projection_sites():
        delta = _delta(site.module, site.param_name)
        if delta is None or site.role not in delta.slots:
            continue
        if delta.slots[site.role] != (site.rows.start, site.rows.stop):
            raise ModelError(
                f"LoRA rows {delta.slots[site.role]} of {site.tower} block {site.block} "
                f"{site.role} do not match the projection rows {site.rows}"
            )
        name = f"{HF_TOWER[site.tower]}.encoder.layers.{site.block}.self_attn.{site.role}_proj"
        out[name] = (delta.A[site.role].detach().cpu(), delta.B[site.role].detach().cpu())
    if not out:
        raise ModelError("the model holds no LoRA update to export")
    return out


def target_pattern(names) -> str:
    """A regex that peft full-matches against exactly the module ``names`` (checked later)."""
    towers = sorted({n.split(".")[0] for n in names})
    roles = sorted({n.rsplit(".", 1)[1] for n in names})
    return rf"({'|'.join(towers)})\.encoder\.layers\.\d+\.self_attn\.({'|'.join(roles)})"


def save_peft_adapter(
    model: AdaptedModel, base_dir: str | Path, out_dir: str | Path, *, base_name: str | None = None
) -> list[str]:
    """Write the LoRA updates of ``model`` as a peft adapter for the HF model in ``base_dir``.

    ``base_dir`` is the untouched base as a ``save_pretrained`` folder; the adapter's
    ``base_model_name_or_path`` names it (or ``base_name``: where the base will be once its
    folder is moved into place). Returns the files written.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import CLIPModel

    weights = lora_weights(model)
    ranks = {a.shape[0] for a, _ in weights.values()}
    if len(ranks) != 1:
        raise ModelError(f"LoRA updates of different ranks {sorted(ranks)}")
    rank = ranks.pop()
    scale = float(model.method_options.effective_scale)
    config = LoraConfig(
        r=rank,
        lora_alpha=scale * rank,
        lora_dropout=0.0,
        bias="none",
        target_modules=target_pattern(weights),
    )
    with quiet_transformers():
        peft_model = get_peft_model(CLIPModel.from_pretrained(str(base_dir)), config)
    inner = peft_model.base_model.model
    adapted = {n for n, m in inner.named_modules() if hasattr(m, "lora_A") and m.lora_A}
    if adapted != set(weights):
        raise ModelError(f"peft adapted {len(adapted)} modules, expected {len(weights)}")
    with torch.no_grad():
        for name, (a, b) in weights.items():
            module = inner.get_submodule(name)
            module.lora_A["default"].weight.copy_(a)
            module.lora_B["default"].weight.copy_(b)
    out = Path(out_dir)
    with quiet_transformers():
        peft_model.save_pretrained(str(out))
    if base_name is not None:  # peft reads the base's files at save time, so named afterwards
        config = out / "adapter_config.json"
        data = json.loads(config.read_text())
        config.write_text(json.dumps({**data, "base_model_name_or_path": base_name}, indent=2))
    log.info("wrote peft adapter %s (%d LoRA pairs, r=%d, alpha=%g)", out, len(weights), rank,
             scale * rank)  # fmt: skip
    return sorted(p.name for p in out.iterdir())
