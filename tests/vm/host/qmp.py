"""A small QMP client (QEMU Machine Protocol, JSON over a Unix socket).

Only what the bench needs to hot-plug and unplug the forensics volume's NVMe
disk: commands with their `return` or `error`, and asynchronous events such as
DEVICE_DELETED. Every wait is bounded; nothing blocks forever on a guest that
hangs. Protocol: qemu's docs/interop/qmp-spec (greeting, then
`qmp_capabilities` before any other command; one JSON object per line).
"""
import json
import socket
import time


class QmpError(Exception):
    """A QMP command failed, the socket closed, or a wait ran out."""


class Qmp:
    """One QMP connection. Events that arrive while waiting for a command's
    answer are kept for `wait_event`."""

    def __init__(self, path, timeout=30.0):
        self.path = path
        self.events = []
        self._buf = b""
        deadline = time.monotonic() + timeout
        last = None
        # qemu creates the socket shortly after it starts.
        while True:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self._sock.connect(path)
                break
            except OSError as e:
                self._sock.close()
                last = e
                if time.monotonic() > deadline:
                    raise QmpError(f"cannot connect to QMP socket {path} within {timeout:.0f}s: {last}") from e
                time.sleep(0.1)
        greeting = self._read_obj(deadline)
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting}")
        self.command("qmp_capabilities", timeout=timeout)

    def close(self):
        try:
            self._sock.close()
        except OSError:
            pass

    def _read_obj(self, deadline):
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QmpError(f"no answer on QMP socket {self.path} in time")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout as e:
                raise QmpError(f"no answer on QMP socket {self.path} in time") from e
            except OSError as e:
                raise QmpError(f"QMP socket {self.path}: {e}") from e
            if not chunk:
                raise QmpError(f"QMP socket {self.path} closed (qemu exited?)")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as e:
            raise QmpError(f"malformed QMP message {line[:200]!r}") from e

    def command(self, name, args=None, timeout=30.0):
        """Run one command; its `return` value, or QmpError with qemu's message."""
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        try:
            self._sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise QmpError(f"QMP {name}: cannot send: {e}") from e
        deadline = time.monotonic() + timeout
        while True:
            obj = self._read_obj(deadline)
            if "event" in obj:
                self.events.append(obj)
            elif "return" in obj:
                return obj["return"]
            elif "error" in obj:
                err = obj["error"]
                raise QmpError(f"QMP {name} {json.dumps(args or {})}: {err.get('class')}: {err.get('desc')}")

    def wait_event(self, name, match=None, timeout=30.0):
        """The first event NAME whose data contains MATCH (a dict of fields),
        taken out of the queue; QmpError after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout

        def matches(ev):
            data = ev.get("data", {})
            return ev.get("event") == name and all(data.get(k) == v for k, v in (match or {}).items())

        while True:
            for i, ev in enumerate(self.events):
                if matches(ev):
                    return self.events.pop(i)
            try:
                obj = self._read_obj(deadline)
            except QmpError as e:
                raise QmpError(f"event {name} {match or ''} did not come within {timeout:.0f}s ({e})") from e
            if "event" in obj:
                self.events.append(obj)

