"""Regenerate the ahead-of-time schema checks from bundle.schema.json."""

from . import generate

for path in generate():
    print(f"wrote {path}")
