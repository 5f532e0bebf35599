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
//! 64 MiB argument costs one copy into the socket and one out of it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The version of this wire format. A worker built with another version is refused at the
/// handshake, before anything else is sent.
pub(crate) const PROTOCOL: u32 = 1;

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
/// Frames whose parts add up to less than this are written with one write call.
const COALESCE: usize = 64 << 10;

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
    /// Pool → worker: call `name` once per part, each part one encoded argument.
    Call { id: u64, name: String },
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

/// Writes one frame (async side: the pool).
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    header: &Header,
    parts: &[&[u8]],
) -> io::Result<()> {
    let (buf, whole) = prefix(header, parts)?;
    w.write_all(&buf).await?;
    if !whole {
        for part in parts {
            w.write_all(&(part.len() as u64).to_le_bytes()).await?;
            w.write_all(part).await?;
        }
    }
    w.flush().await
}

/// Reads one frame (async side: the pool). `Ok(None)` is a clean end of stream between
/// frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut word = [0u8; 4];
    match r.read_exact(&mut word).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let head_len = checked_len(u32::from_le_bytes(word).into(), MAX_HEADER, "a header")?;
    let mut head = vec![0; head_len];
    r.read_exact(&mut head).await?;
    let header = decode_header(&head)?;
    r.read_exact(&mut word).await?;
    let count = checked_len(u32::from_le_bytes(word).into(), MAX_PARTS, "a part count")?;
    let mut parts = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let mut len = [0u8; 8];
        r.read_exact(&mut len).await?;
        let len = checked_len(u64::from_le_bytes(len), isize::MAX as usize, "a part")?;
        let mut part = vec![0; len];
        r.read_exact(&mut part).await?;
        parts.push(part);
    }
    Ok(Some(Frame { header, parts }))
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

    #[test]
    fn async_and_blocking_sides_agree() {
        let header = Header::Call {
            id: 1,
            name: "x".into(),
        };
        let big = vec![7u8; COALESCE + 1];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let buf = rt.block_on(async {
            let mut buf = Vec::new();
            write_frame(&mut buf, &header, &[&big, b"y"]).await.unwrap();
            buf
        });
        let frame = read_frame_blocking(&mut buf.as_slice()).unwrap().unwrap();
        assert_eq!(frame.parts, vec![big.clone(), b"y".to_vec()]);
        let frame = rt
            .block_on(read_frame(&mut buf.as_slice()))
            .unwrap()
            .unwrap();
        assert_eq!(frame.header, header);
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
