//! The wire between a pool and its workers: length-prefixed frames over one Unix socket pair
//! per worker.
//!
//! A frame is a postcard-encoded [`Header`] followed by zero or more raw byte *parts* (the
//! postcard-encoded arguments of a call, or the results of one):
//!
//! ```text
//! u32 header length | header | u32 part count | (u64 part length | part bytes)*
//! ```
//!
//! All integers are little-endian. Parts travel as raw bytes, never through serde, so a
//! 64 MiB argument costs one copy into the socket and one out of it. Small frames are
//! written together: the pool sends the calls it has for a worker with one write.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The version of this wire format. A worker built with another version is refused at the
/// handshake, before anything else is sent.
pub(crate) const PROTOCOL: u32 = 2;

/// The environment variable that makes a process a worker: its value is the pid of the pool
/// process that started it, so a process that merely inherited it (started by a worker in
/// turn) is not mistaken for one.
pub(crate) const WORKER_ENV: &str = "AIO_PROCESS_WORKER";

/// Set in a worker whose panics the pool wants printed on its stderr as well as returned
/// (see [`print_worker_panics`](super::ProcessPoolBuilder::print_worker_panics)).
pub(crate) const PRINT_PANICS_ENV: &str = "AIO_PROCESS_PRINT_PANICS";

/// What a worker writes to its stderr as it starts a task. The pool strips it from what it
/// forwards and keeps only what follows as the stderr of the task, so a crash reports the
/// output of the task it ended, not of the worker's earlier ones. NUL bytes: text output
/// never contains them.
pub(crate) const TASK_MARK: &[u8] = b"\0aio-process-task\0";

/// The largest header a peer may announce: headers are small, so a bigger length means the
/// stream is not a pool's.
const MAX_HEADER: usize = 64 << 20;
/// The most parts a frame may carry.
pub(crate) const MAX_PARTS: usize = 1 << 24;
/// Frames whose parts add up to less than this are written with one write call, and may be
/// written together with others; a call this large is sent to a worker with nothing else in
/// flight, and its parts are written without a copy.
pub(crate) const COALESCE: usize = 64 << 10;

/// Why a call failed inside a worker, without taking the worker down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Failure {
    /// The function panicked.
    Panic {
        message: String,
        location: Option<String>,
    },
    /// The argument bytes did not decode as the function's argument type.
    DeserializeArgs(String),
    /// The function's result could not be encoded.
    SerializeResult(String),
    /// The worker has no function of this name.
    NotRegistered(String),
}

/// The header of a frame. `Hello` must stay the first variant with `protocol` as its first
/// field, so that any version of a worker can be told apart from this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Header {
    /// Worker → pool, first: who the worker is. `functions` lists `(name, signature)`.
    Hello {
        protocol: u32,
        fingerprint: u64,
        functions: Vec<(String, String)>,
    },
    /// Pool → worker, after a good `Hello`: run this initializer (its argument is part 0),
    /// then say `Ready`.
    Start { initializer: Option<String> },
    /// Worker → pool: ready for calls.
    Ready,
    /// Worker → pool: the initializer failed; the worker exits.
    InitFailed { failure: Failure },
    /// Pool → worker: call `name` once per part, each part one encoded argument. A worker
    /// may be sent several calls before it answers the first: it runs them in order.
    Call { id: u64, name: String },
    /// Pool → worker: do not start call `id` if it has not started; say `Skipped` instead
    /// of `Done`. Ignored for a call that has started or ended.
    Cancel { id: u64 },
    /// Worker → pool: call `id` was cancelled before it started, and did not run.
    Skipped { id: u64 },
    /// Worker → pool: the outcomes of call `id`, in order. `None` is a success whose
    /// encoded result is the next part.
    Done {
        id: u64,
        outcomes: Vec<Option<Failure>>,
    },
}

/// A frame as read: its header and its parts.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) header: Header,
    pub(crate) parts: Vec<Vec<u8>>,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn encode_header(header: &Header) -> io::Result<Vec<u8>> {
    postcard::to_allocvec(header).map_err(|e| invalid(format!("cannot encode a header: {e}")))
}

fn decode_header(bytes: &[u8]) -> io::Result<Header> {
    postcard::from_bytes(bytes).map_err(|e| invalid(format!("cannot decode a header: {e}")))
}

fn checked_len(len: u64, max: usize, what: &str) -> io::Result<usize> {
    usize::try_from(len)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| invalid(format!("{what} of {len} bytes is out of range")))
}

/// The bytes that precede the parts, with the first part's length prefix; and for a small
/// frame, everything.
fn prefix(header: &Header, parts: &[&[u8]]) -> io::Result<(Vec<u8>, bool)> {
    let head = encode_header(header)?;
    let total: usize = parts.iter().map(|p| p.len() + 8).sum();
    let whole = total < COALESCE;
    let mut buf = Vec::with_capacity(8 + head.len() + if whole { total } else { 8 });
    let head_len = u32::try_from(head.len()).map_err(|_| invalid("header too large"))?;
    let count = u32::try_from(parts.len()).map_err(|_| invalid("too many parts"))?;
    buf.extend_from_slice(&head_len.to_le_bytes());
    buf.extend_from_slice(&head);
    buf.extend_from_slice(&count.to_le_bytes());
    if whole {
        for part in parts {
            buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
            buf.extend_from_slice(part);
        }
    }
    Ok((buf, whole))
}

/// Whether a frame with these parts is small enough to be written whole with one copy.
pub(crate) fn is_small(parts: &[Vec<u8>]) -> bool {
    parts.iter().map(|p| p.len() + 8).sum::<usize>() < COALESCE
}

/// Appends a whole frame to `out`: the pool writes what it has to send to a worker with
/// one write.
pub(crate) fn encode_frame(out: &mut Vec<u8>, header: &Header, parts: &[&[u8]]) -> io::Result<()> {
    let (buf, whole) = prefix(header, parts)?;
    out.extend_from_slice(&buf);
    if !whole {
        for part in parts {
            out.extend_from_slice(&(part.len() as u64).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    Ok(())
}

/// The bytes of a large frame, as the prefix then each part's length and the part itself,
/// so that the parts are written from where they are, not copied.
pub(crate) fn frame_pieces(header: &Header, parts: Vec<Vec<u8>>) -> io::Result<Vec<Vec<u8>>> {
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let (buf, whole) = prefix(header, &refs)?;
    let mut pieces = vec![buf];
    if !whole {
        for part in parts {
            pieces.push((part.len() as u64).to_le_bytes().to_vec());
            pieces.push(part);
        }
    }
    Ok(pieces)
}

/// How much a [`FrameBuf`] has room to read at a time, at least.
const READ_CHUNK: usize = 64 << 10;

/// Bytes read from a stream and not yet taken as frames. Either side reads into
/// [`spare`](Self::spare) and takes whole frames out; a frame that spans many reads is
/// scanned once, part by part, as its bytes come.
#[derive(Debug)]
pub(crate) struct FrameBuf {
    buf: Vec<u8>,
    /// The bytes not yet taken: `buf[start..end]`.
    start: usize,
    end: usize,
    /// How far the frame at `start` has been scanned: the offset of its next part's
    /// length (from `start`), and how many parts are still to come; `None` until its part
    /// count is in.
    at: usize,
    parts_left: Option<usize>,
}

impl FrameBuf {
    pub(crate) fn new() -> Self {
        FrameBuf {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            at: 0,
            parts_left: None,
        }
    }

    /// Whether nothing is buffered.
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Takes the frame at the front, if all of it has been read. An error if its lengths
    /// are out of range or it does not decode.
    pub(crate) fn take_frame(&mut self) -> io::Result<Option<Frame>> {
        let Some(len) = self.scan()? else {
            return Ok(None);
        };
        let frame = read_frame_blocking(&mut &self.buf[self.start..self.start + len])?;
        self.start += len;
        (self.at, self.parts_left) = (0, None);
        if self.is_empty() {
            (self.start, self.end) = (0, 0);
            if self.buf.len() > 4 * READ_CHUNK {
                // A large frame passed: give its memory back.
                self.buf = vec![0; READ_CHUNK];
            }
        }
        Ok(frame)
    }

    /// The length of the frame at the front, once all of it is in.
    fn scan(&mut self) -> io::Result<Option<usize>> {
        fn word<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
            buf.get(at..at.checked_add(N)?)?.try_into().ok()
        }
        let buf = &self.buf[self.start..self.end];
        let mut left = match self.parts_left {
            Some(left) => left,
            None => {
                let Some(head) = word::<4>(buf, 0) else {
                    return Ok(None);
                };
                let head_len =
                    checked_len(u32::from_le_bytes(head).into(), MAX_HEADER, "a header")?;
                let Some(count) = word::<4>(buf, 4 + head_len) else {
                    return Ok(None);
                };
                self.at = 8 + head_len;
                checked_len(u32::from_le_bytes(count).into(), MAX_PARTS, "a part count")?
            }
        };
        self.parts_left = Some(left);
        while left > 0 {
            let Some(len) = word::<8>(buf, self.at) else {
                return Ok(None);
            };
            let len = checked_len(u64::from_le_bytes(len), isize::MAX as usize, "a part")?;
            let next = self.at.saturating_add(8).saturating_add(len);
            if next > buf.len() {
                return Ok(None);
            }
            self.at = next;
            left -= 1;
            self.parts_left = Some(left);
        }
        Ok(Some(self.at))
    }

    /// Room to read at least [`READ_CHUNK`] bytes into, after what is buffered: what is
    /// buffered moves to the front, or the buffer grows. Mark what was read with
    /// [`filled`](Self::filled).
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        if self.buf.len() - self.end < READ_CHUNK && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.buf.len() - self.end < READ_CHUNK {
            let len = (self.end + READ_CHUNK).max(self.buf.len() * 2);
            self.buf.resize(len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as read.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
    }
}

/// Writes one frame (blocking side: the worker).
pub(crate) fn write_frame_blocking<W: Write>(
    w: &mut W,
    header: &Header,
    parts: &[&[u8]],
) -> io::Result<()> {
    let (buf, whole) = prefix(header, parts)?;
    w.write_all(&buf)?;
    if !whole {
        for part in parts {
            w.write_all(&(part.len() as u64).to_le_bytes())?;
            w.write_all(part)?;
        }
    }
    w.flush()
}

/// Reads one frame (blocking side: the worker). `Ok(None)` is a clean end of stream.
pub(crate) fn read_frame_blocking<R: Read>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut word = [0u8; 4];
    match r.read_exact(&mut word) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let head_len = checked_len(u32::from_le_bytes(word).into(), MAX_HEADER, "a header")?;
    let mut head = vec![0; head_len];
    r.read_exact(&mut head)?;
    let header = decode_header(&head)?;
    r.read_exact(&mut word)?;
    let count = checked_len(u32::from_le_bytes(word).into(), MAX_PARTS, "a part count")?;
    let mut parts = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut len = [0u8; 8];
        r.read_exact(&mut len)?;
        let len = checked_len(u64::from_le_bytes(len), isize::MAX as usize, "a part")?;
        let mut part = vec![0; len];
        r.read_exact(&mut part)?;
        parts.push(part);
    }
    Ok(Some(Frame { header, parts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(header: Header, parts: Vec<Vec<u8>>) {
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut buf = Vec::new();
        write_frame_blocking(&mut buf, &header, &refs).unwrap();
        let mut r = buf.as_slice();
        let frame = read_frame_blocking(&mut r).unwrap().unwrap();
        assert_eq!(frame.header, header);
        assert_eq!(frame.parts, parts);
        assert!(r.is_empty());
        assert!(read_frame_blocking(&mut r).unwrap().is_none());
    }

    #[test]
    fn frames_round_trip_small_and_large() {
        round_trip(Header::Ready, vec![]);
        round_trip(
            Header::Call {
                id: 7,
                name: "f".into(),
            },
            vec![vec![1, 2, 3], vec![]],
        );
        round_trip(
            Header::Done {
                id: 9,
                outcomes: vec![None, Some(Failure::NotRegistered("g".into()))],
            },
            vec![vec![0xAB; COALESCE * 2]],
        );
    }

    /// Feeds `bytes` to a [`FrameBuf`] `step` bytes at a time, and takes every frame as
    /// soon as it is whole.
    fn frames_fed_by(bytes: &[u8], step: usize) -> Vec<Frame> {
        let mut frames = FrameBuf::new();
        let mut out = Vec::new();
        for mut chunk in bytes.chunks(step) {
            while !chunk.is_empty() {
                let spare = frames.spare();
                let n = spare.len().min(chunk.len());
                spare[..n].copy_from_slice(&chunk[..n]);
                frames.filled(n);
                chunk = &chunk[n..];
            }
            while let Some(frame) = frames.take_frame().unwrap() {
                out.push(frame);
            }
        }
        assert!(frames.is_empty());
        out
    }

    #[test]
    fn frames_written_together_are_taken_one_by_one_once_whole_however_they_are_read() {
        let call = Header::Call {
            id: 1,
            name: "x".into(),
        };
        let big = vec![7u8; COALESCE + 1];
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, &call, &[b"y"]).unwrap();
        encode_frame(&mut bytes, &Header::Cancel { id: 1 }, &[]).unwrap();
        for piece in frame_pieces(&call, vec![big.clone(), vec![]]).unwrap() {
            bytes.extend_from_slice(&piece);
        }
        let many: Vec<&[u8]> = vec![b"ab"; 1000];
        encode_frame(&mut bytes, &call, &many).unwrap();
        for step in [1, 7, 4096, bytes.len()] {
            let frames = frames_fed_by(&bytes, step);
            let seen: Vec<_> = frames
                .iter()
                .map(|f| (f.header.clone(), f.parts.len()))
                .collect();
            assert_eq!(
                seen,
                [
                    (call.clone(), 1),
                    (Header::Cancel { id: 1 }, 0),
                    (call.clone(), 2),
                    (call.clone(), 1000)
                ],
                "read {step} bytes at a time"
            );
            assert_eq!(frames[2].parts[0], big);
        }
    }

    #[test]
    fn a_truncated_frame_is_an_error_and_garbage_is_refused() {
        let mut buf = Vec::new();
        write_frame_blocking(&mut buf, &Header::Ready, &[b"abc"]).unwrap();
        buf.pop();
        assert!(read_frame_blocking(&mut buf.as_slice()).is_err());
        let garbage = [0xFFu8; 16];
        assert!(read_frame_blocking(&mut garbage.as_slice()).is_err());
    }
}
