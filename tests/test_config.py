from pathlib import Path

import pytest

from calm_rag.config import read_toml_table
from calm_rag.errors import CalmRagError


def test_extends_lays_the_child_over_its_parents(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('[train]\nlearning_rate = 2e-4\nbatch_size = 2\nmode = "direct"\n'
                                        '[eval]\nsplit = "test"\n')
    (tmp_path / "gentle.toml").write_text('extends = "base.toml"\n[train]\nlearning_rate = 5e-5\nbatch_size = 1\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "3lang.toml").write_text('extends = "../gentle.toml"\n[train]\nlanguages = ["en", "zh"]\n')

    train = read_toml_table(tmp_path / "sub" / "3lang.toml", "train")

    assert train == {"learning_rate": 5e-5, "batch_size": 1, "mode": "direct", "languages": ["en", "zh"]}
    assert read_toml_table(tmp_path / "gentle.toml", "eval") == {"split": "test"}
    assert "extends" not in read_toml_table(tmp_path / "gentle.toml")


@pytest.mark.parametrize("files, message", [
    ({"a.toml": 'extends = "missing.toml"\n'}, r"cannot read config .*missing.toml \(extended by .*a.toml\)"),
    ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "extends a.toml in a cycle"),
    ({"a.toml": 'extends = "a.toml"\n'}, "extends a.toml in a cycle"),
    ({"a.toml": "extends = 3\n"}, "extends must be a file name"),
])
def test_bad_extends(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(CalmRagError, match=message):
        read_toml_table(tmp_path / "a.toml", "train")
