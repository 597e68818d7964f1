"""Masking personal data (plates, names, phones, e-mails, report text, addresses) before anyone sees it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

# Viewers and the public page always get masked values (a report's free text and address included: people
# write their names, phone numbers and house numbers there); operators get the real ones only through an
# explicit, audited reveal (`dashboards.data.site.SiteData` applies these on every read). Masks keep
# enough to tell records apart and to route work (a plate's province and series prefix, a phone's last
# three digits) and nothing that identifies a person on its own.

__all__ = [
    "PERSONAL_FIELDS",
    "mask_address",
    "mask_email",
    "mask_name",
    "mask_phone",
    "mask_plate",
    "mask_rows",
    "mask_text",
]

_HIDDEN: Final = "•"


def mask_plate(plate: str) -> str:
    """`61A-123.45` → `61A-•••.••`: the province code and series stay, the number goes."""
    if not plate:
        return ""
    head = plate[:3]
    return head + "".join(c if not c.isalnum() else _HIDDEN for c in plate[3:])


def mask_phone(phone: str) -> str:
    """`0912 345 678` → `••••••••678`: enough to recognise a number you already have."""
    # Hidden positions count as digits, so masking a number already masked (a site's copy) changes nothing.
    digits = [c for c in phone if c.isdigit() or c == _HIDDEN]
    if not digits:
        return ""
    return _HIDDEN * max(len(digits) - 3, 0) + "".join(digits[-3:])


def mask_name(name: str) -> str:
    """`Nguyễn Văn An` → `N. V. A.`: initials only."""
    return " ".join(f"{word[0]}." for word in name.split() if word)


def mask_email(email: str) -> str:
    """`an.nguyen@example.vn` → `a•••@example.vn`."""
    if "@" not in email:
        return _HIDDEN * 3 if email else ""
    local, domain = email.split("@", 1)
    return f"{local[:1]}{_HIDDEN * 3}@{domain}"


def _mask_words(text: str) -> str:
    # Each word keeps its first letter (its shape stays readable); every other letter and every digit goes.
    out: list[str] = []
    start = True
    for c in text:
        if c.isdigit():
            out.append(_HIDDEN)
            start = False
        elif c.isalpha():
            out.append(c if start else _HIDDEN)
            start = False
        else:
            out.append(c)
            start = True
    return "".join(out)


def mask_text(text: str) -> str:
    """A citizen's free text, which may name people or give numbers: `Gọi 0912 345 678` → `G•• •••• ••• •••`.

    Initials and punctuation stay, so a viewer can tell reports apart and see roughly how long they are;
    an operator reveals the words (audited)."""
    return _mask_words(text)


def mask_address(address: str) -> str:
    """`12 Lý Thường Kiệt, Dĩ An` → `•• L• T••••• K•••, Dĩ An`: the house and street go, the area stays."""
    head, sep, area = address.rpartition(",")
    if not sep:
        return _mask_words(address)
    return f"{_mask_words(head)},{area}"


PERSONAL_FIELDS: Final[Mapping[str, Callable[[str], str]]] = {
    "plate": mask_plate,
    "contact_name": mask_name,
    "contact_phone": mask_phone,
    "contact_email": mask_email,
    "text": mask_text,
    "address": mask_address,
}
"""Every column the warehouse holds that is personal data, with its mask."""


def mask_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `rows` with every personal field masked (other fields untouched)."""
    masked = []
    for row in rows:
        copy = dict(row)
        for field, mask in PERSONAL_FIELDS.items():
            value = copy.get(field)
            if isinstance(value, str):
                copy[field] = mask(value)
        masked.append(copy)
    return masked
