"""Built-in attachments: numpy arrays (.npy, never pickled), JSON data, text and bytes."""

from __future__ import annotations

import io
import json

from .._jsonvalues import json_safe
from ..hookspecs import hookimpl
from ..recording.attachments import Attachment


@hookimpl(trylast=True)
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    if isinstance(obj, bytes):
        return [Attachment(obj, "application/octet-stream", "bin")]
    if isinstance(obj, str):
        return [Attachment(obj.encode("utf-8"), "text/plain", "txt")]
    if type(obj).__module__ == "numpy" and hasattr(obj, "dtype"):
        import numpy as np

        array = np.asarray(obj)
        if array.dtype.hasobject:
            return None  # would need pickle: not an open format
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return [Attachment(buffer.getvalue(), "application/x-npy", "npy")]
    if isinstance(obj, (dict, list, tuple)):
        data = json_safe(obj, f"attachment {name!r}")
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=1)
        return [Attachment((text + "\n").encode("utf-8"), "application/json", "json")]
    return None
