"""Virtual time shared by many executions: a deterministic scheduler.

One Automation execution alone keeps its own clock (engine.Clock): a wait
or a sleep just adds to it. A fleet is many executions at once, sharing
quotas (CopySnapshot's 20 concurrent copies, the concurrently executing
automations, EC2's request rates), so their steps must interleave in one
virtual time. Each execution then runs as a Task: a thread of its own, of
which exactly one runs at any moment. A task gives the turn back whenever
its virtual time advances (an API call takes 0.2 s, a wait polls, a sleep
sleeps, a command runs): Scheduler.sleep(seconds). The scheduler resumes
the task whose wake-up time is earliest; ties are broken by a random draw
from the seed, then by the order of the sleeps, so a run is the same for
the same seed and different seeds interleave differently.

Whoever drives the scheduler (a drill, the fleet tool's loop) is the
"driver": it runs while every task is asleep, and Scheduler.run(until)
or Scheduler.advance(seconds) hands virtual time to the tasks.

What a switch carries (the state that is per execution although the code
keeps it global): the principal of every World Clients (iam.acting_as sets
it for an execution's AutomationAssumeRole), the access-key principals of
iam.py (merged: a key a task registered stays), and boto3.DEFAULT_SESSION
(aws:executeScript's). Each runner saves its own when it gives the turn
away and puts it back when it gets the turn again.

API (stable; service.py and the drills use it):

    s = Scheduler(seed=0)
    task = s.spawn(fn, name)        fn() runs as a task (starts at s.time)
    s.sleep(seconds)                inside a task: advance virtual time
    s.current                       the running Task, or None (the driver)
    s.run(until=None)               driver: run tasks until all are done
                                    (or until virtual time `until`); returns s.time
    s.advance(seconds)              driver: run(until=s.time + seconds)
    task.done, task.result, task.error
"""

import heapq
import random
import threading


class SchedulerError(Exception):
    """A task failed with an exception nobody caught (the driver gets it)."""


class Deadline(BaseException):
    """A task slept past the deadline its runner set (Task.deadline): it
    wakes at the deadline with this raised, as a process killed then would
    stop (a BaseException, so a script's `except Exception` does not hide
    it). The engine sets one for aws:executeScript (600 s)."""


class Task:
    def __init__(self, scheduler, fn, name):
        self.scheduler = scheduler
        self.fn = fn
        self.name = name
        self.done = False
        self.result = None
        self.error = None
        self.wake = threading.Semaphore(0)
        self.context = None
        self.thread = None
        self.deadline = None  # virtual time past which sleep() raises Deadline


def _contexts():
    """The per-runner state a switch saves (module docstring)."""
    import boto3
    import iam
    import world

    principals = [(c, c.principal) for c in list(world.all_clients())]
    return principals, dict(iam._STATE["keys"]), boto3.DEFAULT_SESSION


def _restore(context):
    import boto3
    import iam

    if context is None:
        return
    principals, keys, default = context
    for clients, principal in principals:
        clients.principal = principal
    iam._STATE["keys"].update(keys)
    boto3.DEFAULT_SESSION = default


class Scheduler:
    def __init__(self, seed=0):
        self.time = 0.0
        self.rng = random.Random(seed)
        self.current = None
        self.tasks = []
        self._queue = []  # (wake time, tiebreak, seq, task)
        self._seq = 0
        self._back = threading.Semaphore(0)  # the driver's turn

    def _push(self, task, when):
        self._seq += 1
        heapq.heappush(self._queue, (when, self.rng.random(), self._seq, task))

    def spawn(self, fn, name="task"):
        task = Task(self, fn, name)
        self.tasks.append(task)

        def body():
            task.wake.acquire()
            _restore(task.context)
            try:
                task.result = fn()
            except BaseException as e:  # noqa: BLE001  (handed to the driver)
                task.error = e
            finally:
                task.done = True
                self.current = None
                self._back.release()

        task.thread = threading.Thread(target=body, name="fv-%s" % name, daemon=True)
        task.thread.start()
        self._push(task, self.time)
        return task

    def sleep(self, seconds):
        """Inside a task: give the turn back until virtual time has advanced
        by SECONDS (0: after every other task due now)."""
        task = self.current
        if task is None:
            raise SchedulerError("Scheduler.sleep outside a task")
        wake = self.time + max(0.0, float(seconds))
        cut = task.deadline is not None and wake > task.deadline
        self._push(task, max(self.time, task.deadline) if cut else wake)
        task.context = _contexts()
        self.current = None
        self._back.release()
        task.wake.acquire()
        _restore(task.context)
        if cut:
            raise Deadline("past the deadline at %.1f s" % task.deadline)

    def _step(self):
        when, _tie, _seq, task = heapq.heappop(self._queue)
        self.time = max(self.time, when)
        mine = _contexts()
        self.current = task
        task.wake.release()
        self._back.acquire()
        _restore(mine)
        if task.done and task.error is not None and not getattr(task, "error_seen", False):
            task.error_seen = True
            raise SchedulerError("task %s failed: %s: %s" % (task.name, type(task.error).__name__,
                                                              task.error)) from task.error

    def run(self, until=None, idle_stops=False):
        """The driver gives virtual time to the tasks until none is left
        (or the next wake-up is after UNTIL; then time stops at UNTIL).
        With no task left, time still goes on to UNTIL (the driver slept
        that long) unless IDLE_STOPS."""
        if self.current is not None:
            raise SchedulerError("Scheduler.run from inside a task")
        while self._queue:
            if until is not None and self._queue[0][0] > until:
                self.time = max(self.time, until)
                return self.time
            self._step()
        if until is not None and not idle_stops:
            self.time = max(self.time, until)
        return self.time

    def advance(self, seconds):
        return self.run(until=self.time + max(0.0, float(seconds)))

    def idle(self):
        return not self._queue
