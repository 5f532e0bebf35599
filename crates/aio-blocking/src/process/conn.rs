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

use super::wire::{Frame, FrameBuf, Header, encode_frame, frame_pieces};

pub(crate) struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Bytes read and not yet taken as frames.
    inbox: FrameBuf,
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
            inbox: FrameBuf::new(),
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

    /// Drops what is still to be written: the worker is gone, and what it wrote before
    /// it went is all that is left to read.
    pub(crate) fn discard_outbox(&mut self) {
        self.outbox.clear();
        (self.written, self.open_tail) = (0, false);
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
        if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
        loop {
            if let Some(frame) = self.inbox.take_frame()? {
                return Poll::Ready(Ok(Some(frame)));
            }
            let mut buf = ReadBuf::new(self.inbox.spare());
            ready!(Pin::new(&mut self.reader).poll_read(cx, &mut buf))?;
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(if self.inbox.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                });
            }
            self.inbox.filled(n);
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
