"""Fault runs of the platform: schedules, network partitions, the run, its history checker and its plot."""

from iocctl.faults.history import Anomaly, FaultSpan, Recorded, Stored, check
from iocctl.faults.run import FaultRun, RunResult
from iocctl.faults.schedule import Fault, full, short

__all__ = ["Anomaly", "Fault", "FaultRun", "FaultSpan", "Recorded", "RunResult", "Stored", "check", "full", "short"]
