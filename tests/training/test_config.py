from pathlib import Path

import pytest

from calm_rag.errors import CalmRagError
from calm_rag.training import CalmTrainConfig

RECIPES = sorted((Path(__file__).parents[2] / "pipelines").glob("xcsqa-calm*.toml"))


def test_recipes_load() -> None:
    assert len(RECIPES) >= 3
    configs = {path.name: CalmTrainConfig.from_toml(path) for path in RECIPES}
    assert configs["xcsqa-calm.toml"].mode == "cot" and len(configs["xcsqa-calm.toml"].languages) == 6
    assert configs["xcsqa-calm-direct.toml"].mode == "direct"
    assert configs["xcsqa-calm-3lang.toml"].languages == ("en", "zh", "de")
    # an ablation extends its parent and differs from it only where it says so
    ablation, parent = configs["xcsqa-calm-cpu-gentle-3lang.toml"], configs["xcsqa-calm-cpu-gentle.toml"]
    assert ablation == parent.with_overrides(languages="en,zh,de")
    assert parent == configs["xcsqa-calm-cpu.toml"].with_overrides(
        learning_rate=5e-5, batch_size=1, gradient_accumulation_steps=8)
    assert all(config.permute for config in configs.values())


def test_toml_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[train]\nlanguages = "en,de"\nlearning_rate = 1\nlora_target_modules = ["q_proj", "v_proj"]\n')
    config = CalmTrainConfig.from_toml(path)
    assert config.languages == ("en", "de") and config.learning_rate == 1.0
    assert config.target_modules == ["q_proj", "v_proj"]
    assert CalmTrainConfig().target_modules == "all-linear"
    changed = config.with_overrides(languages="zh,ja", samples=None, beta=0.2)
    assert changed.languages == ("zh", "ja") and changed.samples == config.samples and changed.beta == 0.2


@pytest.mark.parametrize("text, message", [
    ("[train]\nlearning_rat = 1e-5\n", "unknown training settings ['learning_rat']"),
    ("[train]\nmode = 'sampled'\n", "mode must be cot or direct"),
    ("[train]\nloss_type = 'dpo'\n", "unknown loss_type"),
    ("[train]\nlanguages = ['en', 'xx']\n", "xx"),
    ("[train\n", "cannot read config"),
])
def test_bad_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CalmRagError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CalmTrainConfig.from_toml(path)
