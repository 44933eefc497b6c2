"""certplane's operator view: `./certplane inventory | check | report` over a stack's `inventory` output.

Exit codes follow the monitoring-plugin convention so `check` drops into cron, CI or Nagios/Icinga as is:
0 healthy, 1 warning, 2 critical, 3 could not check (bad arguments, missing stack, unreadable inventory).
"""

EXIT_OK, EXIT_WARNING, EXIT_CRITICAL, EXIT_UNKNOWN = 0, 1, 2, 3


class CliError(Exception):
    """A problem the user can act on: printed as one line, exit code 3."""
