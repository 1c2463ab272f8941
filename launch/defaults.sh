# The launch defaults the shell scripts share with Python (sourced by launch/torchrun.sh and slurm/common.sh).
# Each value has one Python owner; tests/unit/test_launch_defaults.py checks that both sides agree.
#   BIOTUNE_EXIT_PREEMPTED                 biotune.errors.EXIT_PREEMPTED: a signal made the trainer checkpoint and
#                                          exit; requeue and resume (EX_TEMPFAIL)
#   BIOTUNE_DEFAULT_COLLECTIVE_TIMEOUT_MIN biotune.distributed.DEFAULT_COLLECTIVE_TIMEOUT_MIN: the process group's
#                                          collective timeout when BIOTUNE_COLLECTIVE_TIMEOUT_MIN is not exported
BIOTUNE_EXIT_PREEMPTED=75
BIOTUNE_DEFAULT_COLLECTIVE_TIMEOUT_MIN=60
