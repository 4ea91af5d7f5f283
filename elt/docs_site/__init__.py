"""The data-docs portal: run history, dbt docs and GX Data Docs as one static local site.

``elt docs build`` writes it into ``.elt/site`` (see ``build``); ``elt docs serve`` serves it
on 127.0.0.1 (see ``serve``). Every page works offline: no CDN, no external fonts.
"""
