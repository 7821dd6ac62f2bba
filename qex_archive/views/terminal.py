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


def visible(text: object) -> str:
    """``text`` safe to print on a terminal: every control, escape and direction-changing
    character is shown as its escape (``\\x1b``), so nothing stored in an archive or a bundle
    can move the cursor, retitle the window or reorder what is shown."""
    return str(text).translate(_INVISIBLE)
