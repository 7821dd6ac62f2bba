"""``qex-archive serve``: a live, read-only browser of one archive, an ASGI app (Starlette)
built by :func:`qex_archive.server.app.make_app` and run by uvicorn.

The interface layer, like ``cli/``: it parses a request, calls the library and the views, and
answers. Its modules import Starlette, which is the optional ``serve`` extra; nothing below
this package imports them, so ``import qex_archive`` never does. Internal: the public API is
what :mod:`qex_archive` exports.

- :mod:`.reading`: the archive opened read-only, one connection per worker thread, every
  request's queries bounded in time.
- :mod:`.paging`: the runs of a page, keyset-paged on the time index.
- :mod:`.pages`: the HTML of each page (built with :mod:`qex_archive.views.html`).
- :mod:`.app`: the routes, the query parameters and the rules every response follows.
"""
