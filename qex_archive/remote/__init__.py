"""Bundles at URLs and remotes: transfer (:mod:`.transfer`, the one upload path: a temporary
key, then a move) and sync (:mod:`.sync`, push and pull through the same
:class:`~qex_archive.store.query.RunFilter` as every other command). Internal: the public API is
what :mod:`qex_archive` exports.
"""
