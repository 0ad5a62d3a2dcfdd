"""Every text the pages show exists in Simplified Chinese as well as English."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "web" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
METHODS = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "ngettext": (1, 2)}


def _extracted() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), METHODS, keywords=KEYWORDS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_page_text_has_a_chinese_translation() -> None:
    """No text in the web code or templates is missing from, or untranslated in, the catalogue."""
    with (CATALOGUE / "messages.po").open("rb") as handle:
        catalogue = read_po(handle)
    translated = {m.id for m in catalogue if m.id and m.string}
    missing = sorted(_extracted() - translated)
    assert not missing, f"untranslated: {missing}"


def test_catalogue_is_compiled_by_the_install() -> None:
    """The install compiled the catalogue (the .mo is not committed, it is built)."""
    assert (CATALOGUE / "messages.mo").exists()
