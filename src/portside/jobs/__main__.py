"""`python -m portside.jobs --parent-pid PID`: the job worker `portside serve` starts.
It starts in the small idle state (portside.jobs.idle), not with the job code loaded."""

import sys

from portside.jobs.idle import main

main(sys.argv[1:])
