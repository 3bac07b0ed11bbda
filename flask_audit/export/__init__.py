"""Export: the filtered trail as a CSV or JSON-lines file, mailed to the admin who asked.

The file rendering (in Python, or in SQL where the database can), durable jobs and their
store, the per-admin limits, the mail through the app's own mailer with its attachment or
signed link, the stored files those links and the exports page serve, and the routes and
pages that confirm an export, start it, show its status and serve the download.
"""
