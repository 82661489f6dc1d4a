"""A code location for the run-monitoring test: one job whose op sleeps until it is killed."""

import time

from dagster import Definitions, job, op


@op
def wait_for_kill():
    time.sleep(600)


@job
def sleepy():
    wait_for_kill()


@op
def quick():
    return 1


@job
def after():
    quick()


defs = Definitions(jobs=[sleepy, after])
