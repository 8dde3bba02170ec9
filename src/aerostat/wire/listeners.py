"""Binding the three StatsD listeners, reassembling TCP lines, and reading
the kernel's drop counter of a UDP socket."""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import stat

from aerostat.addresses import parse_address
from aerostat.errors import AerostatError


def _bind(kind: socket.SocketKind, address: str, flag: str) -> socket.socket:
    family, host, port = parse_address(address, flag)
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise AerostatError(f"cannot listen on {address}: {error.strerror}", source=flag) from None
    sock.setblocking(False)
    return sock


def _set_read_buffer(sock: socket.socket, read_buffer: int | None, flag: str) -> None:
    if not read_buffer:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, read_buffer)
    except OSError as error:
        raise AerostatError(f"cannot set the read buffer: {error.strerror}", source=flag) from None


# deviation: upstream keeps the OS default receive buffer (often 208 KiB, a
# few hundred datagrams: any pause of 2 ms at 100k datagrams/s loses some).
# Unless told otherwise, aerostat asks for this much; the kernel grants up
# to net.core.rmem_max, and read_buffer_bytes() tells what it granted.
DEFAULT_READ_BUFFER = 8 * 1024 * 1024


def bind_udp(address: str, read_buffer: int | None = None) -> socket.socket:
    sock = _bind(socket.SOCK_DGRAM, address, "--statsd.listen-udp")
    if read_buffer is None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DEFAULT_READ_BUFFER)
    else:
        _set_read_buffer(sock, read_buffer, "--statsd.read-buffer")
    return sock


def read_buffer_bytes(sock: socket.socket) -> int:
    """The receive buffer the kernel granted (Linux reports twice the
    usable size it books for its own overhead; this is the usable part)."""
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2


def bind_tcp(address: str) -> socket.socket:
    sock = _bind(socket.SOCK_STREAM, address, "--statsd.listen-tcp")
    sock.listen(128)
    return sock


def bind_unixgram(path: str, mode: int, read_buffer: int | None = None) -> socket.socket:
    """A datagram socket at ``path``. Like upstream it will not replace an
    existing file; unlike upstream it replaces a stale socket left behind by
    a process that died, since nothing can be listening on it."""
    flag = "--statsd.listen-unixgram"
    abstract = path.startswith("@")
    if not abstract and os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise AerostatError(f"{path} exists and is not a socket; refusing to replace it",
                                source=flag)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: its owner is gone
        else:
            raise AerostatError(f"{path} is in use by another process", source=flag)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind("\0" + path[1:] if abstract else path)
        if not abstract:
            os.chmod(path, mode)
    except OSError as error:
        sock.close()
        raise AerostatError(f"cannot listen on {path}: {error.strerror}", source=flag) from None
    _set_read_buffer(sock, read_buffer, "--statsd.read-buffer")
    sock.setblocking(False)
    return sock


class LineAssembler:
    """Cuts a TCP byte stream into whole lines. A line longer than
    ``max_line`` is discarded up to its newline and counted, and the
    connection goes on (upstream closes it)."""

    __slots__ = ("_discarding", "_pending", "max_line", "too_long")

    def __init__(self, max_line: int = 65536) -> None:
        self.max_line = max_line
        self._pending = b""
        self._discarding = False
        self.too_long = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete, non-empty lines now available, without their line
        endings (``\n`` or ``\r\n``)."""
        if self._discarding:
            end = chunk.find(b"\n")
            if end == -1:
                return []
            chunk = chunk[end + 1 :]
            self._discarding = False
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > self.max_line:
            self.too_long += 1
            self._pending = b""
            self._discarding = True
        if any(len(line) > self.max_line for line in lines):
            kept = [line for line in lines if len(line) <= self.max_line]
            self.too_long += len(lines) - len(kept)
            lines = kept
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return [line for line in lines if line]

    def finish(self) -> bytes:
        """What is left when the peer closes: a last line without a newline."""
        rest, self._pending = self._pending, b""
        return b"" if self._discarding else rest.removesuffix(b"\r")


def udp_kernel_drops(sock: socket.socket) -> int | None:
    """The kernel's count of datagrams dropped for this socket (receive
    buffer full), from /proc/net/udp{,6}; None where that is unavailable."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except OSError:
        return None
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as lines:
            next(lines, None)
            for line in lines:
                fields = line.split()
                if len(fields) >= 13 and fields[9] == str(inode):
                    return int(fields[12])
    return None


# descriptors kept free for what must go on at the limit: scrapes, the
# mapping file on reload, /proc reads
RESERVED_DESCRIPTORS = 32


def connection_cap(wanted: int, web_connections: int) -> int:
    """StatsD TCP connections allowed at once: what was asked for, within the
    file-descriptor limit, so that the process never runs out of descriptors
    for its own scrapes. The soft limit is first raised to the hard one, as
    Go programs (statsd_exporter among them) do at start."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft < hard:
            with contextlib.suppress(ValueError, OSError):
                target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ValueError, OSError):
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    room = soft - RESERVED_DESCRIPTORS - web_connections - _open_descriptors()
    return max(1, min(wanted, room))


def _open_descriptors() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 16


def socket_identity(path: str) -> tuple[int, int] | None:
    """Device and inode of a unixgram socket file, to recognise it at stop;
    None for an abstract socket."""
    if path.startswith("@"):
        return None
    found = os.stat(path)
    return found.st_dev, found.st_ino


def remove_own_socket(path: str, identity: tuple[int, int] | None) -> None:
    """Removes the socket file aerostat bound, and nothing else: a file put
    at the path since is not aerostat's to delete."""
    if identity is None:
        return
    with contextlib.suppress(OSError):
        found = os.lstat(path)
        if stat.S_ISSOCK(found.st_mode) and (found.st_dev, found.st_ino) == identity:
            os.unlink(path)


def describe_read_buffer(sock: socket.socket, asked: int | None) -> tuple[int, int, str]:
    """(bytes granted, logging level, message) about a UDP socket's buffer."""
    granted = read_buffer_bytes(sock)
    if asked is not None and granted < asked:
        return granted, logging.WARNING, ("The kernel granted a smaller UDP read buffer than asked "
                                    "for; raise net.core.rmem_max")
    if granted < 1024 * 1024:
        return granted, logging.INFO, ("Small UDP read buffer: a pause of a few milliseconds under "
                                 "heavy load drops datagrams (counted in "
                                 "aerostat_udp_kernel_drops_total); raise net.core.rmem_max "
                                 "to 8388608 or more")
    # said at the default level too: a user comparing exporters needs it
    return granted, logging.INFO, "UDP read buffer"
