"""The engine's two exceptions, apart so that engine.py and runcommand.py
import them without importing each other (issue 25: no import circle)."""


class EngineError(Exception):
    """The runbook uses something this engine does not implement, or is
    malformed: the run is refused, never approximated."""


class StepFailed(Exception):
    """A step ended unsuccessfully. status: Failed, TimedOut or Cancelled."""

    def __init__(self, message, status="Failed"):
        super().__init__(message)
        self.status = status
