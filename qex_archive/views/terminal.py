"""Text for a terminal: nothing stored in an archive or a bundle may steer it."""

from __future__ import annotations

# Characters that must not reach a terminal as they are: C0 controls but tab and newline, DEL,
# C1 controls (escape sequences: window titles, clearing the screen), the bidirectional
# overrides that reorder what is shown, line separators, and lone surrogates (not text).
_INVISIBLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        0x2028,
        0x2029,
        *range(0xD800, 0xE000),
    ]
}


class Styled(str):
    """Text already made visible, with qex's own styling (bold) added after: :func:`visible`
    passes it on as it is. Only qex makes one, from text it escaped itself (:func:`styled`)."""

    __slots__ = ()


def visible(text: object) -> str:
    """``text`` safe to print on a terminal: every control, escape and direction-changing
    character is shown as its escape (``\\x1b``), so nothing stored in an archive or a bundle
    can move the cursor, retitle the window or reorder what is shown. :class:`Styled` text
    was escaped when it was made, and keeps its styling."""
    if isinstance(text, Styled):
        return text
    return str(text).translate(_INVISIBLE)


def styled(text: str) -> Styled:
    """``text`` made of parts each already made visible (by :func:`visible`) and then, where
    qex wants, styled (``click.style``): marked so that :func:`visible` keeps it as it is."""
    return Styled(text)
