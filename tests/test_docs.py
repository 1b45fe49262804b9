"""The README's configuration reference must list every setting the code accepts."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from portside.config import Settings

README = Path(__file__).parent.parent / "README.md"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [key for key in _keys(Settings) if f"`{key}`" not in text]
    assert not missing, f"README configuration table lacks: {missing}"
