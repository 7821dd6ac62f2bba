"""The exchange bundle: one ZIP file that is a BagIt 1.0 bag whose ``data/`` is an RO-Crate.

``pack_bundle`` writes one; ``read_bundle`` validates one received from anybody (nothing is
trusted, nothing is written); ``import_bundle`` brings a validated bundle into
an archive (``qex_archive.unpack_bundle`` into a new one).
"""

from __future__ import annotations

from .format import BundleError, Limits
from .importer import ImportReport, import_bundle
from .reader import BundleContents, read_bundle
from .writer import PackReport, pack_bundle

__all__ = [
    "BundleContents",
    "BundleError",
    "ImportReport",
    "Limits",
    "PackReport",
    "import_bundle",
    "pack_bundle",
    "read_bundle",
]
