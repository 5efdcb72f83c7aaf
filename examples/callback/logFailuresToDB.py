#!/usr/bin/env python
# Records each failed job in a SQLite database next to the callback's working directory.

import sqlite3
import time

import qb

job = qb.jobinfo("-id", qb.jobid())[0]
db = sqlite3.connect("failures.db")
try:
    db.execute(
        "CREATE TABLE IF NOT EXISTS failures "
        "(jobid INTEGER, name TEXT, label TEXT, pgrp INTEGER, failed_at REAL)"
    )
    db.execute(
        "INSERT INTO failures VALUES (?, ?, ?, ?, ?)",
        (job["id"], job["name"], job.get("label", ""), job.get("pgrp", job["id"]), time.time()),
    )
    db.commit()
finally:
    db.close()
