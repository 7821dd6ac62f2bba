"""Everything qex shows: one HTML home (:mod:`.html`: frame, CSP and the one escaping
function) for the Bloch page, the experiment report and the notebook views, the text views for
the terminal (:mod:`.text`, made safe to print by :mod:`.terminal`), and one way for all of
them to write a run's numbers, validity verdict, params and tags (:mod:`.values`).

Views sit above the store, physics and recording and below everything else: at runtime they
import nothing from the archive facade (``run``, ``archive``, ``selection``, ``plugins``), the
bundle, the remotes or the CLI; they are handed runs and read them by their attributes.
Internal: the public API is what :mod:`qex_archive` exports.
"""
