#!/usr/bin/env python3
"""A Conveyor producer in Python: submit a batch file to a coordinator, collect results.

The same protocol as `conveyor submit` (docs/protocol.md), in one file, with pyzmq:

    pip install pyzmq
    python3 examples/producer.py --coordinator tcp://coordinator:5555 \
        --input examples/prompts.jsonl --output out.jsonl [--job-id my-job] [--chunk-lines 500]

It uploads the input in chunks (each acknowledged once the coordinator has journaled
it), then long-polls for results and appends them to the output file (error lines to
`<output stem>.errors.jsonl`). Lost replies are retried on a fresh socket (the ZeroMQ
Guide's "Lazy Pirate"); BUSY replies are retried after the coordinator's hint. Both
are safe because the coordinator answers a chunk it already has with DUPLICATE.

With --server-key FILE (the coordinator's public key, a `public-key = ...` line) the
connection uses CurveZMQ with a throw-away client key pair.

The exit status is 0 when every request has a result line, 2 when some have error
lines, 1 when the job could not be completed.
"""

import argparse
import hashlib
import json
import os
import random
import struct
import sys
import time

import zmq

MAGIC = b"CVP1"
TIMEOUT_MS = 5000  # per attempt; a FETCH adds its wait
ATTEMPTS = 5
FETCH_WAIT_MS = 5000
FETCH_LINES = 1000


def wire_string(text):
    """A WireWriter string: u32 length, then the bytes."""
    data = text.encode()
    return struct.pack("<I", len(data)) + data


class ProtocolError(Exception):
    pass


class Producer:
    """One DEALER socket to the coordinator, reopened whenever a reply is lost."""

    def __init__(self, endpoint, server_key=None):
        self.endpoint = endpoint
        self.server_key = server_key
        self.context = zmq.Context.instance()
        self.socket = None
        self.next_id = random.getrandbits(63) | 1

    def _open(self):
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            public, secret = zmq.curve_keypair()
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
            self.socket.curve_serverkey = self.server_key
        self.socket.connect(self.endpoint)

    def call(self, verb, body, extra_frames=(), wait_ms=0):
        """Sends [CVP1][verb][request id][body][extra...]; returns (kind, body, rest)."""
        request_id = self.next_id
        self.next_id += 1
        frames = [MAGIC, verb, struct.pack("<Q", request_id), body, *extra_frames]
        backoff = 0.1
        silent = 0
        while True:
            if self.socket is None:
                self._open()
            self.socket.send_multipart(frames)
            deadline = time.monotonic() + (TIMEOUT_MS + wait_ms) / 1000
            reply = None
            while reply is None:
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0 or not self.socket.poll(left_ms, zmq.POLLIN):
                    break
                parts = self.socket.recv_multipart()
                if len(parts) < 4 or parts[0] != MAGIC:
                    raise ProtocolError("not a producer protocol reply")
                if struct.unpack("<Q", parts[2])[0] == request_id:
                    reply = parts  # (a reply to an abandoned attempt is skipped)
            if reply is None:
                # Lazy Pirate: the socket may hold a half-done exchange; never reuse it.
                self.socket.close()
                self.socket = None
                silent += 1
                if silent >= ATTEMPTS:
                    raise ProtocolError(f"no reply from {self.endpoint} after {silent} attempts")
                time.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, 5.0)
                continue
            kind, body, rest = reply[1], reply[3], reply[4:]
            if kind == b"BUSY":
                (retry_after_ms,) = struct.unpack_from("<I", body)
                time.sleep(max(retry_after_ms / 1000, random.uniform(backoff / 2, backoff)))
                backoff = min(backoff * 2, 5.0)
                continue
            if kind == b"ERROR":
                code_len = struct.unpack_from("<I", body)[0]
                code = body[4 : 4 + code_len].decode()
                message = body[8 + code_len :].decode(errors="replace")
                return kind, (code, message), rest
            return kind, body, rest

    def submit_chunk(self, job_id, chunk, final, lines):
        body = wire_string(job_id) + struct.pack("<IB", chunk, 1 if final else 0)
        payload = b"".join(line + b"\n" for line in lines)
        kind, body, _ = self.call(b"SUBMIT", body, [payload])
        if kind not in (b"ACK", b"DUPLICATE"):
            raise ProtocolError(f"chunk {chunk} refused: {body}")
        return kind == b"DUPLICATE"

    def fetch(self, job_id, offset):
        body = wire_string(job_id) + struct.pack("<QII", offset, FETCH_LINES, FETCH_WAIT_MS)
        kind, body, records = self.call(b"FETCH", body, wait_ms=FETCH_WAIT_MS)
        if kind != b"RESULTS":
            raise ProtocolError(f"FETCH answered {kind.decode()}: {body}")
        next_offset, done, total, completed, failed, count = struct.unpack("<QBqqqI", body)
        if count != len(records):
            raise ProtocolError("RESULTS record count does not match its frames")
        # Each record: b"R" + result line, or b"E" + error line.
        return [(r[:1] == b"E", r[1:]) for r in records], next_offset, bool(done), (
            total,
            completed,
            failed,
        )

    def release(self, job_id):
        self.call(b"RELEASE", wire_string(job_id))


def default_job_id(path):
    """Stable for the same file: a rerun resumes the same job."""
    st = os.stat(path)
    key = f"{os.path.abspath(path)}\n{st.st_size}\n{st.st_mtime_ns}".encode()
    return "py-" + hashlib.sha256(key).hexdigest()[:16]


def cut_partial_last_line(path):
    """A line cut short by a kill would glue onto the next one written: remove it."""
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def chunks(path, chunk_lines):
    """(index, final, lines) for the input, in order; an empty file is one empty chunk."""
    with open(path, "rb") as f:
        lines = [line.rstrip(b"\n") for line in f]
    count = max(1, (len(lines) + chunk_lines - 1) // chunk_lines)
    for i in range(count):
        yield i, i + 1 == count, lines[i * chunk_lines : (i + 1) * chunk_lines]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coordinator", required=True, help="e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--job-id")
    parser.add_argument("--chunk-lines", type=int, default=1000)
    parser.add_argument("--server-key", help="the coordinator's CURVE public-key file")
    args = parser.parse_args()

    server_key = None
    if args.server_key:
        for line in open(args.server_key):
            name, _, value = line.partition("=")
            if name.strip() == "public-key":
                server_key = value.strip().strip('"').encode()
    producer = Producer(args.coordinator, server_key)
    job_id = args.job_id or default_job_id(args.input)
    print(job_id)

    # Results already in the files (an earlier run) are not written twice.
    stem, _ = os.path.splitext(args.output)
    errors_path = stem + ".errors.jsonl"
    seen = set()
    failed_lines = 0
    for path in (args.output, errors_path):
        if os.path.exists(path):
            cut_partial_last_line(path)
            with open(path, "rb") as f:
                ids = {json.loads(line)["custom_id"] for line in f}
            if path == errors_path:
                failed_lines += len(ids - seen)
            seen |= ids
    with open(args.input, "rb") as f:
        requests = sum(1 for line in f if line.strip())
    if len(seen) >= requests:
        print(f"[producer] every request already has a line in {args.output}", file=sys.stderr)
        return 2 if failed_lines else 0

    for index, final, lines in chunks(args.input, args.chunk_lines):
        producer.submit_chunk(job_id, index, final, lines)
    print(f"[producer] job {job_id}: uploaded", file=sys.stderr)

    offset = 0
    with open(args.output, "ab") as out, open(errors_path, "ab") as err:
        while True:
            records, offset, done, (total, completed, failed) = producer.fetch(job_id, offset)
            for is_error, line in records:
                custom_id = json.loads(line).get("custom_id")
                if custom_id in seen:
                    continue
                seen.add(custom_id)
                (err if is_error else out).write(line + b"\n")
                failed_lines += is_error
            out.flush()
            err.flush()
            print(f"[producer] {completed + failed}/{total} done, {failed} failed", file=sys.stderr)
            if done:
                break
    producer.release(job_id)
    return 2 if failed_lines else 0


if __name__ == "__main__":
    sys.exit(main())
