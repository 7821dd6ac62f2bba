"""Everything qex shows: one HTML home (:mod:`.html`: frame, CSP, escaping, number and verdict
helpers) for the Bloch page, the experiment report and the notebook views, and the text views
for the terminal (:mod:`.text`). Internal: the public API is what :mod:`qex_archive` exports.
"""
