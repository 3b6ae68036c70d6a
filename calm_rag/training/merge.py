"""`merge_adapter`: fold a trained CALM adapter into its base model and save a standalone model.

Useful to serve the aligned model without PEFT (or to convert it further). The base defaults to
the model the run was trained on (its manifest), and an explicit `model` must be that same base.
The output folder is written like a training run: beside `out`, renamed into place at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_json, write_json
from calm_rag.errors import CalmRagError
from calm_rag.generation.loading import base_names, check_adapter_base
from calm_rag.training import modeling
from calm_rag.training.artifacts import RunFolder


def _base_name(run: Path) -> str:
    manifest = run / "manifest.json"
    if manifest.is_file():
        return str(read_json(manifest)["model"]["name"])
    recorded = read_json(run / "adapter_config.json").get("base_model_name_or_path")
    if not recorded:
        raise CalmRagError(f"{run} does not say which base model it was trained on; pass --model")
    return str(recorded)


def merge_adapter(run: Path | str, out: Path | str, model: str | None = None, *, dtype: str = "auto",
                  overwrite: bool = False) -> dict[str, Any]:
    """Merge the adapter at the top of `run` into its base; save model and tokenizer to `out`."""
    from peft import PeftModel

    run = Path(run)
    if not (run / "adapter_config.json").is_file():
        raise CalmRagError(f"{run} is not a LoRA adapter folder (no adapter_config.json); "
                           "pass the --out folder of `calm-rag train`")
    resolved = modeling.resolve(model or _base_name(run))
    check_adapter_base(run, base_names(resolved))
    folder = RunFolder.open(out, overwrite=overwrite, resumable=False)
    loaded = modeling.load_model(resolved, device="cpu", dtype=dtype)
    merged = PeftModel.from_pretrained(loaded.model, run).merge_and_unload()
    merged.save_pretrained(folder.partial)
    loaded.tokenizer.save_pretrained(folder.partial)
    write_json(folder.partial / "calm_merge.json", {"adapter": str(run.resolve()), "base": modeling.describe(resolved)})
    return {"out": str(folder.finalize()), "base": modeling.describe(resolved), "adapter": str(run)}
