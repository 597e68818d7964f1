"""The dashboards' words in Vietnamese (the default) and English, looked up by key from vi.yaml and en.yaml."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from typing import Final, Literal

from ioc.yamlfiles import load_yaml

# Operators read Vietnamese first; every label a page shows comes from here or from the contracts' own
# `label_vi`/`label_en` (modules, measures, report categories, Decision 766 indicators, AQI bands), never
# from a string literal in a page. Both files hold the same keys (a test checks it); `{name}` placeholders
# are filled with `str.format`.

__all__ = ["LANGUAGES", "Language", "Translator", "language", "strings"]

Language = Literal["vi", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("vi", "en")


def language(value: object, default: Language = "vi") -> Language:
    """`value` if it names a supported language, else `default`."""
    if value == "en":
        return "en"
    if value == "vi":
        return "vi"
    return default


def _flatten(prefix: str, node: object, into: dict[str, str]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, into)
    else:
        into[prefix] = str(node)


@functools.cache
def strings(lang: Language) -> Mapping[str, str]:
    """Every string of a language, by dotted key ("incidents.title")."""
    text = importlib.resources.files("dashboards.i18n").joinpath(f"{lang}.yaml").read_text(encoding="utf-8")
    flat: dict[str, str] = {}
    _flatten("", load_yaml(text, f"dashboards/i18n/{lang}.yaml"), flat)
    return flat


class Translator:
    """Strings of one language: `t("incidents.sent", partition=2)`."""

    def __init__(self, lang: Language) -> None:
        self.lang: Language = lang
        self._strings = strings(lang)

    def __call__(self, key: str, **values: object) -> str:
        text = self._strings.get(key)
        if text is None:
            # A missing key shows itself rather than crashing a screen an operator is using.
            return key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._strings

    def pick(self, vi: str, en: str) -> str:
        """The contracts' own bilingual labels (`label_vi`, `label_en`)."""
        return vi if self.lang == "vi" else en
