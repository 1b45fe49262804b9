"""`python -m portside.jobs --parent-pid PID`: the job worker `portside serve` starts."""

import sys

from portside.jobs.process import main

main(sys.argv[1:])
