"""Host side of the guest's SSM agent stand-in (tests/vm/guest/agent.sh).

The guest's agent serves one request at a time on a serial line: in the VM,
qemu's second UART on a Unix socket; in the protocol's own test
(agent_test.py), a pty. The link works on any file descriptor and bounds
every read and write with a deadline. The protocol is described in agent.sh.
"""
import base64
import errno
import hashlib
import os
import select
import socket
import time


# The SSM agent reports a command it killed (execution timeout or cancel)
# with this exit code, and maps exit codes to statuses by it
# (amazon-ssm-agent: appconfig.CommandStoppedPreemptivelyExitCode = 137 on
# Unix; pluginutil GetStatus: 0 Success, 137 TimedOut or Cancelled, else Failed).
STOPPED_EXIT_CODE = 137


def ssm_status(result):
    """The invocation status the agent reports for a run() result."""
    if result["ended"] == "cancel":
        return "Cancelled"
    if result["ended"] == "timeout":
        return "TimedOut"
    if result["rc"] == 0:
        return "Success"
    return "TimedOut" if result["rc"] == STOPPED_EXIT_CODE else "Failed"


class AgentError(Exception):
    """The agent did not answer in time, refused a request, or the line
    closed: the bench failed, not the command."""


class AgentLink:
    """Line-oriented link to agent.sh over file descriptor FD."""

    def __init__(self, fd, name, keep=None):
        self.fd = fd
        self.name = name
        self._keep = keep  # the socket object owning fd, if any
        self._buf = b""
        self._seq = 0

    @classmethod
    def connect_unix(cls, path, timeout):
        """Connect to a Unix socket qemu listens on (retrying until TIMEOUT)."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
                return cls(sock.fileno(), path, keep=sock)
            except OSError as e:
                sock.close()
                if time.monotonic() > deadline:
                    raise AgentError(f"cannot connect to the guest agent's socket {path}: {e}") from e
                time.sleep(0.05)

    def close(self):
        if self._keep is not None:
            self._keep.close()
            self._keep = None

    # ---- lines ----------------------------------------------------------------

    def send(self, data, timeout=30):
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError(f"{self.name}: the agent's line did not take the request in {timeout} s")
            _, w, _ = select.select([], [self.fd], [], left)
            if not w:
                continue
            try:
                n = os.write(self.fd, view)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                raise AgentError(f"{self.name}: cannot send: {e}") from e
            view = view[n:]

    def line(self, deadline, what):
        """The next line from the agent, without its newline."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AgentError(f"the guest agent did not answer in time ({what})")
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                # A pty whose other side closed reads EIO.
                raise AgentError(f"{self.name}: the agent's line closed: {e} ({what})") from e
            if not chunk:
                raise AgentError(f"{self.name}: the agent's line closed (qemu exited?) ({what})")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("ascii", "replace").rstrip("\r")

    def expect(self, prefix, deadline, what):
        """Skip lines until one starting with PREFIX; @@BAD is an error."""
        while True:
            line = self.line(deadline, what)
            if line.startswith("@@BAD"):
                raise AgentError(f"the guest agent refused a request ({what}): {line}")
            if line.startswith(prefix):
                return line

    # ---- requests ----------------------------------------------------------------

    def wait_ready(self, timeout):
        self.expect("@@READY", time.monotonic() + timeout, "start of the agent")

    def run(self, label, script, timeout, cancel_after=None, delivery_timeout=120):
        """Run SCRIPT (text) in the guest. None when the agent did not take
        it within DELIVERY_TIMEOUT seconds; else a dict: ended (exit, timeout
        or cancel), rc, stdout, stderr (whole), seconds (wall, host side)."""
        self._seq += 1
        cid = f"c{self._seq}"
        raw = script.encode()
        payload = base64.encodebytes(raw)
        timeout = max(1, int(timeout))
        cancel = "0" if cancel_after is None else f"{max(0.001, float(cancel_after)):.3f}"
        t0 = time.monotonic()
        self.send(f"@@RUN {cid} {label} {timeout} {cancel} {len(payload)} "
                  f"{hashlib.sha256(raw).hexdigest()}\n".encode() + payload)
        try:
            self.expect(f"@@ACK {cid}", t0 + max(1, int(delivery_timeout)), f"delivery of {cid}")
        except AgentError as e:
            if "did not answer in time" not in str(e):
                raise
            return None
        head = self.expect(f"@@RESULT {cid} ", t0 + timeout + 60, f"{label} ({cid})")
        fields = dict(kv.split("=", 1) for kv in head.split()[2:])
        out, err = [], []
        cur = out
        while True:
            line = self.line(time.monotonic() + 60, f"output of {cid}")
            if line == "@@ERR":
                cur = err
            elif line == f"@@DONE {cid}":
                break
            else:
                cur.append(line)
        return {
            "id": cid,
            "ended": fields.get("ended", "exit"),
            "rc": int(fields["rc"]),
            "stdout": base64.b64decode("".join(out)).decode("utf-8", "replace"),
            "stderr": base64.b64decode("".join(err)).decode("utf-8", "replace"),
            "seconds": time.monotonic() - t0,
        }

    def observe(self, label, serial=""):
        """The scenario's observation hook in the guest (results on its console)."""
        self.send(f"@@OBS {label} {serial}\n".encode())
        self.expect(f"@@OK {label}", time.monotonic() + 60, f"observation {label}")

    def mountpoint(self, serial):
        """Where the guest has the NVMe disk with SERIAL mounted ('' if not)."""
        self.send(f"@@MOUNTED {serial}\n".encode())
        return self.expect("@@MOUNTED", time.monotonic() + 30, "mount query")[len("@@MOUNTED"):].strip()

    def quit(self, timeout=10):
        self.send(b"@@QUIT\n")
        self.expect("@@BYE", time.monotonic() + timeout, "quit")
