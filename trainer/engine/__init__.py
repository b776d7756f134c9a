"""The QLoRA engine: plain Python over torch/transformers/peft/bitsandbytes, no Django.

Heavy libraries are imported inside the functions that need them, so importing this package
is cheap and never pulls in torch.
"""
