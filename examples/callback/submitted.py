#!/usr/bin/env python
# Logs every submitted job: the original's submitted.py (examples/original, kept as
# published) writing to the run directory instead of /tmp.

import sys
import qb
import traceback

fh = open('submitted.log', 'a')
try:
    # ==================================================
    # === NOTE: ===
    # the qb.jobinfo() in callbacks is not the
    # same as the one in the external python API
    # ==================================================
    job = qb.jobinfo("-id", qb.jobid())[0]
    fh.write('submitted %(id)s: %(name)s\n' % job)
except:
    fh.write(traceback.format_exc())
fh.close()
