"""Export: the filtered trail as a CSV file, mailed to the admin who asked.

The CSV rendering (in Python, or in SQL where the database can), durable jobs and their
store, the per-admin limits, the mail through the app's own mailer with its attachment or
signed link, the stored files those links serve, and the routes that start an export,
show its status and serve the download.
"""
