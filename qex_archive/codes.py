"""Every stable code qex-archive reports: ``check`` findings (``QEX-Cnnn``) and bundle
refusals (``QEX-Bnnn``), each a named constant defined here and nowhere else.

The codes are an interface: users grep for them, scripts match them and the docs explain them
(``docs/checks.md`` and ``docs/bundle-format.md``; ``tests/test_docs.py`` collects every
constant of this module and fails when one is undocumented, or when the docs name one that does
not exist). A value never changes and a retired code is never reused.

They live in a module of their own, beside :mod:`qex_archive.errors` rather than in it,
because most of them are not exceptions: a ``check`` code labels a finding in a report, and
only some of them (with every bundle code) also travel on an exception (``ForeignFile.code``,
``BundleError.code``). Like ``errors``, this module imports nothing, so every layer may use it.

The bundle codes keep the names :mod:`qex_archive.bundle.format` has always exported them
under (it re-exports them); the check codes are named for what the finding is about.
"""

from __future__ import annotations

# --- check findings (``qex-archive check``; docs/checks.md) ---------------------------------
FILE_MISSING = "QEX-C001"  # a file the database refers to is missing or cannot be read
FILE_SIZE_CHANGED = "QEX-C002"  # a file's size differs from the one recorded
FILE_CONTENT_CHANGED = "QEX-C003"  # a file's SHA-256 differs from the one recorded
NPY_DAMAGED = "QEX-C004"  # a .npy header is damaged or not a square <c16 C-order matrix
ORPHAN_FILE = "QEX-C005"  # a file in results/ or artifacts/ that no run refers to
TEMPORARY_FILE_LEFT = "QEX-C006"  # a temporary file left by an interrupted write
NO_CHECKSUM = "QEX-C007"  # a file with no recorded checksum (warning)
NON_PHYSICAL_STATE = "QEX-C008"  # a state flagged as non-physical when recorded (warning)
DATABASE_DAMAGED = "QEX-C009"  # SQLite's own quick_check failed
NOT_OWN_PATH = "QEX-C010"  # a stored path is not results/NAME or artifacts/NAME
METADATA_NOT_OBJECT = "QEX-C011"  # a run's metadata is not a JSON object
STAGING_LEFT = "QEX-C012"  # a staging directory left by an interrupted import
PARAMS_NOT_OBJECT = "QEX-C013"  # a run's params is not a JSON object
INVALID_TIMESTAMP = "QEX-C014"  # a run's timestamp is not a number in the years 1900-9999
NOT_REGULAR_FILE = "QEX-C015"  # a stored path or a data directory entry is not a regular file
SHARED_FILE = "QEX-C016"  # one file is referenced by the rows of several runs
LINKED_DIR = "QEX-C017"  # results/ or artifacts/ is a symbolic link or not a directory
STATE_MISMATCH = "QEX-C018"  # a run's metadata.state contradicts its .npy

# --- bundle refusals (``BundleError.code``; docs/bundle-format.md) --------------------------
NOT_A_ZIP = "QEX-B001"  # not a ZIP file, truncated, or unreadable
TRAILING_DATA = "QEX-B002"  # data after the ZIP end record, or a ZIP comment
TOO_MANY_MEMBERS = "QEX-B003"  # more members than --max-members
BAD_NAME = "QEX-B004"  # a member name a bundle may not contain
DUPLICATE_NAME = "QEX-B005"  # two members whose names are equal or collide after case folding
NOT_REGULAR = "QEX-B006"  # a member that is not a regular file (symlink, directory, device)
UNSUPPORTED_ZIP = "QEX-B007"  # encryption, or a compression, flag, extra field or version
TOO_LARGE = "QEX-B008"  # a size (or a count of JSON values) over its --max-* limit
RATIO = "QEX-B009"  # a compression ratio over --max-ratio (zip bomb)
OVERLAP = "QEX-B010"  # overlapping members, unaccounted bytes, or headers that disagree
SIZE_MISMATCH = "QEX-B011"  # a member whose bytes differ in size from what it declares
CHECKSUM = "QEX-B012"  # a SHA-256 or CRC-32 mismatch, or corrupt compressed data
MISSING = "QEX-B013"  # a file listed (or required) but missing
EXTRA = "QEX-B014"  # a file present but not in the manifest
BAD_BAGIT = "QEX-B015"  # bagit.txt is not BagIt 1.0 with UTF-8 tag files
BAD_BAG_INFO = "QEX-B016"  # bag-info.txt is malformed
OXUM = "QEX-B017"  # Payload-Oxum does not match the payload
BAD_MANIFEST = "QEX-B018"  # a manifest is malformed
TAGMANIFEST_MISMATCH = "QEX-B019"  # tagmanifest-sha256.txt is incomplete or stale
BAD_JSON = "QEX-B020"  # invalid or too deep JSON, duplicate keys, NaN or lone surrogates
SCHEMA = "QEX-B021"  # qex-bundle.json does not follow schemas/bundle.schema.json
BAD_NPY = "QEX-B022"  # a .npy that is not complex128, C order, square and complete
INCONSISTENT = "QEX-B023"  # descriptions that disagree with the files or each other
VERSION = "QEX-B024"  # a bundle format version this qex-archive does not read
CONFLICT = "QEX-B025"  # import conflict: run IDs present here with other content
