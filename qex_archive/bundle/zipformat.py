"""The ZIP records a bundle is made of (APPNOTE 6.3), laid out once for the writer
(:mod:`.zipwriter`) and the reader (:mod:`.zipstructure`): each record's struct layout and
signature, the methods and the saturated 32- and 16-bit values that defer to ZIP64 fields.
"""

from __future__ import annotations

import struct

LOCAL = struct.Struct("<4sHHHHHIIIHH")  # local file header, before the name and extra field
LOCAL_SIGNATURE = b"PK\x03\x04"
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # central directory entry
CENTRAL_SIGNATURE = b"PK\x01\x02"
END = struct.Struct("<4sHHHHIIH")  # end of central directory record
END_SIGNATURE = b"PK\x05\x06"
END_COMMENT_LENGTH_AT = 20  # where the end record's comment length lies in it
END64 = struct.Struct("<4sQHHIIQQQQ")  # ZIP64 end of central directory record
END64_SIGNATURE = b"PK\x06\x06"
END64_RECORD_SIZE = END64.size - 12  # what the record says of its own size
LOCATOR64 = struct.Struct("<4sIQI")  # ZIP64 end of central directory locator
LOCATOR64_SIGNATURE = b"PK\x06\x07"
EXTRA_HEADER = struct.Struct("<HH")  # an extra field's kind and length, before its body
ZIP64_EXTRA = 0x0001  # the ZIP64 extra field's kind: 8-byte values only

STORED, DEFLATED = 0, 8
SAT16, SAT32 = 0xFFFF, 0xFFFFFFFF  # a saturated field: "see the ZIP64 records"
VERSION_DEFAULT = 20  # version needed: deflate
VERSION_ZIP64 = 45
MADE_BY_UNIX = 3 << 8  # "version made by": the host system in the high byte


def zip64_extra(values: list[int]) -> bytes:
    """A ZIP64 extra field holding ``values``."""
    return EXTRA_HEADER.pack(ZIP64_EXTRA, 8 * len(values)) + struct.pack(
        f"<{len(values)}Q", *values
    )
