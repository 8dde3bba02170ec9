"""Many datagrams per system call: Linux's ``recvmmsg(2)`` through ctypes over
the C library (no compiler needed where aerostat is installed), into buffers
allocated once. One ``recv`` per datagram costs more in the kernel than
aerostat's whole cached path costs in Python; one ``recvmmsg`` takes up to
SLOTS datagrams.

Each datagram has a slot of SLOT_BYTES (64 KiB: the largest UDP payload
fits, so no datagram is cut short, as with ``recv(65535)``), in one
anonymous memory map whose pages the kernel provides only when a datagram
is written there. The lengths, flags and sender addresses the kernel writes
are read for a whole batch at once through strided memory views rather
than one ctypes field at a time.

``batch_receiver()`` answers None where recvmmsg is missing (not Linux, or a
C library without it): the source then keeps the ``recv`` loop."""

from __future__ import annotations

import ctypes
import errno
import mmap
import socket
import struct
import sys
from collections.abc import Hashable

SLOTS = 128
SLOT_BYTES = 1 << 16
NAME_BYTES = 128  # struct sockaddr_storage
MSG_DONTWAIT = 0x40  # Linux's values; recvmmsg exists on Linux only
MSG_TRUNC = 0x20
_SENDER_CACHE_LIMIT = 4096


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),  # socklen_t
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


def _recvmmsg() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                         ctypes.c_void_p]
    function.restype = ctypes.c_int
    return function


def _u32_index(offset: int) -> int:
    assert offset % 4 == 0
    return offset // 4


def sender_of(name: bytes) -> Hashable:
    """A socket address as the kernel wrote it, as ``recvfrom`` gives it:
    ``(host, port)`` for IPv4, ``(host, port, flowinfo, scope_id)`` for IPv6."""
    family = int.from_bytes(name[:2], sys.byteorder)
    if family == socket.AF_INET and len(name) >= 8:
        return (socket.inet_ntop(socket.AF_INET, name[4:8]),
                int.from_bytes(name[2:4], "big"))
    if family == socket.AF_INET6 and len(name) >= 28:
        host = socket.inet_ntop(socket.AF_INET6, name[8:24])
        flowinfo = int.from_bytes(name[4:8], "big")
        (scope_id,) = struct.unpack("=I", name[24:28])
        if scope_id:
            try:
                host = f"{host}%{socket.if_indextoname(scope_id)}"
            except OSError:
                host = f"{host}%{scope_id}"
        return (host, int.from_bytes(name[2:4], "big"), flowinfo, scope_id)
    return None


class BatchReceiver:
    """recvmmsg on one non-blocking datagram socket."""

    def __init__(self, sock: socket.socket, function: ctypes._CFuncPtr) -> None:  # type: ignore[name-defined]
        self.fd = sock.fileno()
        self._recvmmsg = function
        self._data = mmap.mmap(-1, SLOTS * SLOT_BYTES)
        self._names = mmap.mmap(-1, SLOTS * NAME_BYTES)
        data_address = ctypes.addressof(ctypes.c_char.from_buffer(self._data))
        names_address = ctypes.addressof(ctypes.c_char.from_buffer(self._names))
        self._iovecs = (_Iovec * SLOTS)()
        self._headers = (_Mmsghdr * SLOTS)()
        for slot in range(SLOTS):
            self._iovecs[slot].iov_base = data_address + slot * SLOT_BYTES
            self._iovecs[slot].iov_len = SLOT_BYTES
            header = self._headers[slot].msg_hdr
            header.msg_name = names_address + slot * NAME_BYTES
            header.msg_namelen = NAME_BYTES
            header.msg_iov = ctypes.addressof(self._iovecs[slot])
            header.msg_iovlen = 1
        # the headers as 32-bit words: one strided slice reads a field of
        # every header (or writes it)
        stride = ctypes.sizeof(_Mmsghdr)
        assert stride % 4 == 0
        self._words = memoryview(self._headers).cast("B").cast("I")
        step = stride // 4
        self._lengths = self._words[_u32_index(_Mmsghdr.msg_len.offset)::step]
        flags_at = _Msghdr.msg_flags.offset
        self._flags = self._words[_u32_index(flags_at)::step]
        self._name_lengths = self._words[_u32_index(_Msghdr.msg_namelen.offset)::step]
        self._full_names = memoryview(bytearray(struct.pack(f"={SLOTS}I",
                                                            *[NAME_BYTES] * SLOTS))).cast("I")
        self._starts = [slot * SLOT_BYTES for slot in range(SLOTS)]
        self._senders: dict[bytes, Hashable] = {}
        self.truncated = 0  # datagrams longer than a slot (cut, as recv would)
        self.bytes = 0  # received, all calls

    def receive(self, datagrams: list[bytes], senders: list[Hashable] | None) -> int:
        """Appends what one call received (and who sent each, when ``senders``
        is a list) and answers how many; 0 when nothing is waiting."""
        if senders is not None:
            self._name_lengths[:] = self._full_names  # the kernel shrank them
        count: int = self._recvmmsg(self.fd, ctypes.addressof(self._headers), SLOTS,
                               MSG_DONTWAIT, None)
        if count <= 0:
            code = ctypes.get_errno()
            if count == 0 or code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            raise OSError(code, errno.errorcode.get(code, "recvmmsg failed"))
        data = self._data
        lengths = self._lengths[:count].tolist()
        self.bytes += sum(lengths)
        datagrams += [data[start:start + length]
                      for start, length in zip(self._starts, lengths, strict=False)]
        # perf: UDP sets no flag (a slot holds the largest datagram), so
        # the flags are looked at one by one only if any is set at all
        if any(self._flags[:count]):
            self.truncated += sum(1 for flag in self._flags[:count] if flag & MSG_TRUNC)
        if senders is not None:
            names, known = self._names, self._senders
            for slot, name_length in enumerate(self._name_lengths[:count].tolist()):
                start = slot * NAME_BYTES
                raw = names[start:start + name_length]
                sender = known.get(raw)
                if sender is None:
                    if len(known) >= _SENDER_CACHE_LIMIT:
                        known.clear()
                    sender = known[raw] = sender_of(raw)
                senders.append(sender)
        return count

    def close(self) -> None:
        self._lengths.release()
        self._flags.release()
        self._name_lengths.release()
        self._words.release()
        self._full_names.release()


def batch_receiver(sock: socket.socket) -> BatchReceiver | None:
    """A BatchReceiver for ``sock``, or None where recvmmsg is missing."""
    function = _recvmmsg()
    if function is None:
        return None
    return BatchReceiver(sock, function)
