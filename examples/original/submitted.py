#!/usr/bin/env python

import sys
import qb
import traceback

fh = open('/tmp/univeral_callback_test', 'a')
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
