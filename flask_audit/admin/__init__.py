"""The admin page: the ``audit`` blueprint, its read-only JSON API and the chart.

Views stay thin: they check who is asking, read filters through :mod:`flask_audit.query`
and render; presentation turns rows into what the page shows.
"""
