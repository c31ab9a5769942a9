"""clipgap: how far is CLIP from your task, which PEFT method to use, what fine-tuning cost."""

__version__ = "0.1.0"
