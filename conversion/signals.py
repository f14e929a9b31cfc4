"""Signals of the product's own events (not model saves).

A job ends through a conditional UPDATE (only the worker that still holds it may write its outcome), which
Django's post_save never sees; `job_finished` is sent once that write has happened, with the Job as it is now.
"""

from django.dispatch import Signal

job_finished = Signal()  # kwargs: job (a Job whose state is final)
# Sent by workflow.perform inside the move's transaction, once the Approval row exists. The workflow announces
# it rather than calling the notifications itself: notifications read the workflow, so that call was a cycle.
approval_recorded = Signal()  # kwargs: conversion, approval
