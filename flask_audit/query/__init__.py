"""Reading the trail: what an admin asked for, and the SQL that answers it.

Filters read from a query string and checked, the search language (``q``), page cursors,
and the keyset queries built from them. The admin page, the JSON API, exports and
``flask audit export`` all read through here, so a filter means the same thing everywhere
and is always scoped to the tenant and the retention window.
"""
