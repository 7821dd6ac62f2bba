"""Quantities of quantum states, one implementation of each formula (:mod:`.measures`), and
the validation of a stored state built on them with one tolerance table (:mod:`.validation`).
Internal: the public API is what :mod:`qex_archive` exports.
"""
