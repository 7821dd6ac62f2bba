"""Turning what a user hands over into a run: state coercion (:mod:`.states`), attachments,
names, run context capture and the files and rows of one run (:mod:`.prepare`). Internal:
the public API is what :mod:`qex_archive` exports.
"""
