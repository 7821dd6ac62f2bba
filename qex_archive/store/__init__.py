"""The store: the only code that touches SQLite, fsync or the archive's stored paths.

Connections and the one write unit (:mod:`.writer`), the SQL of every table
(:mod:`.tables`), migrations, path rules (:mod:`.paths`), durable files (:mod:`.files`),
the ``.npy`` format (:mod:`.npyfile`) and ``check``/``gc`` (:mod:`.integrity`). Internal: the
public API is what :mod:`qex_archive` exports.
"""
