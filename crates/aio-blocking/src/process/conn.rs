//! The pool's end of the socket to one worker: frames to send wait in an outbox and go out
//! as the socket takes them, and what arrives is read into an inbox and taken frame by
//! frame. Neither side ever waits for a whole frame, so a slot can write calls, read
//! answers and watch its worker at once, and dropping any of its waits loses nothing.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::wire::{Frame, Header, encode_frame, frame_len, frame_pieces, read_frame_blocking};

/// How much the inbox reads at a time, at least.
const READ_CHUNK: usize = 64 << 10;

pub(crate) struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Bytes read and not yet taken as frames: `inbox[start..end]`.
    inbox: Vec<u8>,
    start: usize,
    end: usize,
    /// What is still to write, in order; the first piece from `written` on.
    outbox: VecDeque<Vec<u8>>,
    written: usize,
    /// The last piece of the outbox holds whole small frames, and more may join it.
    open_tail: bool,
}

impl Conn {
    pub(crate) fn new(stream: UnixStream) -> Conn {
        let (reader, writer) = stream.into_split();
        Conn {
            reader,
            writer,
            inbox: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            outbox: VecDeque::new(),
            written: 0,
            open_tail: false,
        }
    }

    /// Queues a small frame: it joins the small frames queued before it, and they go out
    /// with one write.
    pub(crate) fn queue(&mut self, header: &Header, parts: &[&[u8]]) -> io::Result<()> {
        match self.outbox.back_mut() {
            Some(tail) if self.open_tail => encode_frame(tail, header, parts),
            _ => {
                let mut tail = Vec::new();
                encode_frame(&mut tail, header, parts)?;
                self.outbox.push_back(tail);
                self.open_tail = true;
                Ok(())
            }
        }
    }

    /// Queues a large frame, whose parts are written from where they are.
    pub(crate) fn queue_large(&mut self, header: &Header, parts: Vec<Vec<u8>>) -> io::Result<()> {
        self.outbox.extend(frame_pieces(header, parts)?);
        self.open_tail = false;
        Ok(())
    }

    /// Whether everything queued has been written.
    pub(crate) fn is_flushed(&self) -> bool {
        self.outbox.is_empty()
    }

    /// Writes what is queued, as far as the socket takes it.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(piece) = self.outbox.front() {
            let n = ready!(Pin::new(&mut self.writer).poll_write(cx, &piece[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
            if self.written == piece.len() {
                self.outbox.pop_front();
                self.written = 0;
                self.open_tail &= !self.outbox.is_empty();
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is queued, and reads until a whole frame is in: ready with it, with
    /// `None` at a clean end of the stream, or with an error. Cancel safe: what was read
    /// or written stays read or written.
    pub(crate) fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Frame>>> {
        // A failed write is reported once nothing more can be read: a worker that died
        // may have answered calls before, and those answers still count.
        let flushed = self.poll_flush(cx);
        loop {
            let buffered = &self.inbox[self.start..self.end];
            if let Some(len) = frame_len(buffered)? {
                let frame = read_frame_blocking(&mut &buffered[..len])?;
                self.start += len;
                if self.start == self.end {
                    (self.start, self.end) = (0, 0);
                    if self.inbox.len() > 4 * READ_CHUNK {
                        // A large frame passed: give the memory back.
                        self.inbox = vec![0; READ_CHUNK];
                    }
                }
                let Some(frame) = frame else {
                    unreachable!("a whole frame is buffered")
                };
                return Poll::Ready(Ok(Some(frame)));
            }
            self.make_room();
            let mut buf = ReadBuf::new(&mut self.inbox[self.end..]);
            match Pin::new(&mut self.reader).poll_read(cx, &mut buf) {
                Poll::Ready(read) => read?,
                Poll::Pending => {
                    return match flushed {
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        _ => Poll::Pending,
                    };
                }
            }
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(if self.start == self.end {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                });
            }
            self.end += n;
        }
    }

    /// Makes room to read at least [`READ_CHUNK`] more bytes: moves what is buffered to
    /// the front, or grows the inbox.
    fn make_room(&mut self) {
        if self.inbox.len() - self.end >= READ_CHUNK {
            return;
        }
        if self.start > 0 {
            self.inbox.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        if self.inbox.len() - self.end < READ_CHUNK {
            let len = (self.end + READ_CHUNK).max(self.inbox.len() * 2);
            self.inbox.resize(len, 0);
        }
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// The next frame, writing what is queued meanwhile.
    pub(crate) async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        poll_fn(|cx| self.poll_frame(cx)).await
    }
}
