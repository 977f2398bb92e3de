//! A WebSocket on a TCP stream the session owns outright once the handshake is done.
//!
//! Under actix-web, an upgraded connection stays inside actix-http's HTTP/1 dispatcher, which
//! keeps an 8 KiB read and an 8 KiB write buffer for the connection's whole life: most of
//! what an idle WebSocket costs. The upgrade service (see [`super::upgrade`]) takes the stream
//! out of the dispatcher instead, and [`WsSocket`] frames it with actix-http's own WebSocket
//! codec, holding a buffer only while bytes are in flight. An idle connection holds none.

use std::io;
use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseReason, Codec, Frame, Item, Message, ProtocolError};
use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A whole message from the client, fragments put together.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Text(ByteString),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// Why the client's side of the connection cannot be read any further.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("frame too large")]
    FrameTooLarge,
    #[error("message too large")]
    MessageTooLarge,
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    #[error("{0}")]
    Protocol(ProtocolError),
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
}

/// The connection can no longer be written to.
#[derive(Debug, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 4096;

/// How many encoded bytes [`WsSocket::texts`] gathers before writing them out.
const BATCH_BYTES: usize = 64 * 1024;

/// The most a frame header takes (2 + 8 for the length + 4 for the mask).
const MAX_HEADER: usize = 14;

/// How long a closing connection is read from and discarded, so that the client gets the
/// close frame instead of a reset for data the server never read.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

pub struct WsSocket {
    io: TcpStream,
    codec: Codec,
    /// Received bytes not yet framed; empty and unallocated between messages.
    read_buf: BytesMut,
    /// Encoded frames not yet written; empty and unallocated once written.
    write_buf: BytesMut,
    /// A fragmented message being put together: whether it is text, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
    max_message: usize,
    closed: bool,
}

impl WsSocket {
    /// Takes over `io` right after the handshake response was written. `received` holds what
    /// the client already sent past its handshake request. Frames and whole messages larger
    /// than `max_message` bytes are refused.
    pub fn new(io: TcpStream, received: BytesMut, max_message: usize) -> Self {
        Self {
            io,
            codec: Codec::new().max_size(max_message),
            read_buf: if received.is_empty() {
                BytesMut::new()
            } else {
                received
            },
            write_buf: BytesMut::new(),
            partial: None,
            max_message,
            closed: false,
        }
    }

    /// The next message; `None` once the client has gone. Cancel-safe: bytes read stay in
    /// the socket for the next call.
    pub async fn recv(&mut self) -> Option<Result<Incoming, ReceiveError>> {
        loop {
            match self.codec.decode(&mut self.read_buf) {
                Ok(Some(frame)) => match self.assemble(frame) {
                    Ok(Some(message)) => return Some(Ok(message)),
                    Ok(None) => continue,
                    Err(error) => return Some(Err(error)),
                },
                Ok(None) => {}
                Err(ProtocolError::Overflow) => return Some(Err(ReceiveError::FrameTooLarge)),
                Err(error) => return Some(Err(ReceiveError::Protocol(error))),
            }
            // The codec waits for a whole frame before it checks its size; a frame that
            // cannot fit is refused here instead of buffered.
            if self.read_buf.len() > self.max_message + MAX_HEADER {
                return Some(Err(ReceiveError::FrameTooLarge));
            }
            match self.fill().await {
                Ok(0) => return None,
                Ok(_) => {}
                Err(error) => return Some(Err(ReceiveError::Io(error))),
            }
        }
    }

    /// Reads what the stream has. Bytes land in a scratch array first and only what
    /// arrived is kept, so a waiting connection holds no buffer and a small frame costs a
    /// small allocation.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.read_buf.is_empty() {
            self.read_buf = BytesMut::new();
        }
        loop {
            self.io.readable().await?;
            let mut chunk = [0u8; READ_CHUNK];
            match self.io.try_read(&mut chunk) {
                Ok(n) => {
                    self.read_buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(error) => return Err(error),
            }
        }
    }

    fn assemble(&mut self, frame: Frame) -> Result<Option<Incoming>, ReceiveError> {
        let message = match frame {
            Frame::Text(bytes) => text(bytes)?,
            Frame::Binary(bytes) => Incoming::Binary(bytes),
            Frame::Ping(bytes) => Incoming::Ping(bytes),
            Frame::Pong(bytes) => Incoming::Pong(bytes),
            Frame::Close(reason) => Incoming::Close(reason),
            Frame::Continuation(Item::FirstText(bytes)) => {
                self.partial = Some((true, BytesMut::from(&bytes[..])));
                return Ok(None);
            }
            Frame::Continuation(Item::FirstBinary(bytes)) => {
                self.partial = Some((false, BytesMut::from(&bytes[..])));
                return Ok(None);
            }
            Frame::Continuation(Item::Continue(bytes)) => {
                self.extend(&bytes)?;
                return Ok(None);
            }
            Frame::Continuation(Item::Last(bytes)) => {
                self.extend(&bytes)?;
                // The codec only yields `Last` after a first fragment.
                let Some((is_text, whole)) = self.partial.take() else {
                    return Err(ReceiveError::Protocol(
                        ProtocolError::ContinuationNotStarted,
                    ));
                };
                if is_text {
                    text(whole.freeze())?
                } else {
                    Incoming::Binary(whole.freeze())
                }
            }
        };
        Ok(Some(message))
    }

    fn extend(&mut self, bytes: &[u8]) -> Result<(), ReceiveError> {
        let Some((_, whole)) = &mut self.partial else {
            return Err(ReceiveError::Protocol(
                ProtocolError::ContinuationNotStarted,
            ));
        };
        if whole.len() + bytes.len() > self.max_message {
            return Err(ReceiveError::MessageTooLarge);
        }
        whole.extend_from_slice(bytes);
        Ok(())
    }

    pub async fn text(&mut self, text: impl Into<ByteString>) -> Result<(), Closed> {
        self.send(Message::Text(text.into())).await
    }

    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.send(Message::Ping(Bytes::copy_from_slice(payload)))
            .await
    }

    pub async fn pong(&mut self, payload: &[u8]) -> Result<(), Closed> {
        self.send(Message::Pong(Bytes::copy_from_slice(payload)))
            .await
    }

    /// Sends a close frame, then lets the client finish: what it still sends is read and
    /// dropped for up to a second, so the close frame is not lost to a reset.
    pub async fn close(mut self, reason: Option<CloseReason>) {
        if self.send(Message::Close(reason)).await.is_err() {
            return;
        }
        self.closed = true;
        if self.io.shutdown().await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            loop {
                self.read_buf.clear();
                match self.fill().await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }

    /// Sends text frames in order, encoding them into one buffer written out whenever it
    /// holds [`BATCH_BYTES`]: a catch-up of thousands of frames costs a few writes, not one
    /// system call per frame. Cancel-safe as [`Self::text`] is.
    pub async fn texts(
        &mut self,
        texts: impl IntoIterator<Item = impl Into<ByteString>>,
    ) -> Result<(), Closed> {
        for text in texts {
            self.encode(Message::Text(text.into()))?;
            if self.write_buf.len() >= BATCH_BYTES {
                self.flush().await?;
            }
        }
        self.flush().await
    }

    /// Encodes a frame and writes it out. Cancel-safe: a frame cut short stays queued and is
    /// finished before the next one, so the stream never carries half a frame.
    async fn send(&mut self, message: Message) -> Result<(), Closed> {
        self.encode(message)?;
        self.flush().await
    }

    fn encode(&mut self, message: Message) -> Result<(), Closed> {
        if self.closed {
            return Err(Closed);
        }
        let is_text = matches!(message, Message::Text(_));
        if self.codec.encode(message, &mut self.write_buf).is_err() {
            return Err(Closed);
        }
        if is_text {
            metrics::counter!("chatd_websocket_frames_sent_total").increment(1);
        }
        Ok(())
    }

    /// Writes out what is encoded, then lets the buffer go: an idle socket holds none.
    async fn flush(&mut self) -> Result<(), Closed> {
        while !self.write_buf.is_empty() {
            let written = match self.io.writable().await {
                Ok(()) => self.io.try_write(&self.write_buf),
                Err(error) => Err(error),
            };
            match written {
                Ok(0) => return self.fail(),
                Ok(n) => self.write_buf.advance(n),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return self.fail(),
            }
        }
        self.write_buf = BytesMut::new();
        Ok(())
    }

    fn fail(&mut self) -> Result<(), Closed> {
        self.closed = true;
        self.write_buf = BytesMut::new();
        Err(Closed)
    }
}

fn text(bytes: Bytes) -> Result<Incoming, ReceiveError> {
    ByteString::try_from(bytes)
        .map(Incoming::Text)
        .map_err(|_| ReceiveError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use actix_http::ws::{CloseCode, OpCode, Parser};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const MAX: usize = 1024;

    /// A server socket and the client's end of it; `early` is what the client sent along
    /// with its handshake.
    async fn connected(early: &[u8]) -> (WsSocket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (WsSocket::new(server, BytesMut::from(early), MAX), client)
    }

    /// A frame as a client sends it: masked.
    fn client_frame(payload: &[u8], op: OpCode, fin: bool) -> Vec<u8> {
        let mut frame = BytesMut::new();
        Parser::write_message(&mut frame, payload, op, fin, true);
        frame.to_vec()
    }

    /// Reads one frame the server wrote; it must not be masked.
    async fn server_frame(client: &mut TcpStream, buf: &mut BytesMut) -> (OpCode, Vec<u8>) {
        loop {
            if let Some((fin, op, payload)) = Parser::parse(buf, false, usize::MAX).unwrap() {
                assert!(fin);
                return (op, payload.map(|p| p.to_vec()).unwrap_or_default());
            }
            assert_ne!(client.read_buf(buf).await.unwrap(), 0, "server hung up");
        }
    }

    #[tokio::test]
    async fn fragments_arrive_as_one_message_after_what_came_with_the_handshake() {
        let (mut ws, mut client) = connected(&client_frame(b"first", OpCode::Text, true)).await;
        let mut later = client_frame(b"hel", OpCode::Text, false);
        later.extend(client_frame(b"", OpCode::Ping, true));
        later.extend(client_frame(b"lo", OpCode::Continue, true));
        client.write_all(&later).await.unwrap();

        let mut next = async || ws.recv().await.unwrap().unwrap();
        assert_eq!(next().await, Incoming::Text("first".into()));
        // A control frame may come between the fragments of a message.
        assert_eq!(next().await, Incoming::Ping(Bytes::new()));
        assert_eq!(next().await, Incoming::Text("hello".into()));
        drop(client);
        assert!(ws.recv().await.is_none(), "the client has gone");
    }

    #[tokio::test]
    async fn an_idle_connection_holds_no_buffers() {
        let (mut ws, mut client) = connected(b"").await;
        client
            .write_all(&client_frame(b"hello", OpCode::Text, true))
            .await
            .unwrap();
        assert!(matches!(ws.recv().await, Some(Ok(Incoming::Text(_)))));
        ws.text("welcome").await.unwrap();

        let waited = tokio::time::timeout(Duration::from_millis(50), ws.recv()).await;
        assert!(waited.is_err(), "nothing more was sent");
        assert_eq!(ws.read_buf.capacity(), 0);
        assert_eq!(ws.write_buf.capacity(), 0);
        let mut buf = BytesMut::new();
        assert_eq!(
            server_frame(&mut client, &mut buf).await,
            (OpCode::Text, b"welcome".to_vec())
        );
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_refused_before_it_is_all_buffered() {
        let (mut ws, mut client) = connected(b"").await;
        let huge = client_frame(&vec![b'x'; 1 << 20], OpCode::Text, true);
        // Only part of it: the socket must not wait for the rest.
        client.write_all(&huge[..4 * MAX]).await.unwrap();
        assert!(matches!(
            ws.recv().await,
            Some(Err(ReceiveError::FrameTooLarge))
        ));
    }

    #[tokio::test]
    async fn a_message_over_the_limit_in_fragments_is_refused() {
        let (mut ws, mut client) = connected(b"").await;
        let half = vec![b'x'; MAX / 2 + 1];
        let mut frames = client_frame(&half, OpCode::Text, false);
        frames.extend(client_frame(&half, OpCode::Continue, true));
        client.write_all(&frames).await.unwrap();
        assert!(matches!(
            ws.recv().await,
            Some(Err(ReceiveError::MessageTooLarge))
        ));
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_is_refused() {
        let (mut ws, mut client) = connected(b"").await;
        client
            .write_all(&client_frame(&[0xff, 0xfe], OpCode::Text, true))
            .await
            .unwrap();
        assert!(matches!(
            ws.recv().await,
            Some(Err(ReceiveError::InvalidUtf8))
        ));
    }

    #[tokio::test]
    async fn close_sends_the_reason_then_ends_the_stream() {
        let (ws, mut client) = connected(b"").await;
        // Unread data from the client must not turn the close into a reset.
        client
            .write_all(&client_frame(b"unread", OpCode::Text, true))
            .await
            .unwrap();
        let closing = tokio::spawn(ws.close(Some(CloseReason {
            code: CloseCode::Away,
            description: Some("bye".into()),
        })));
        let mut buf = BytesMut::new();
        let (op, payload) = server_frame(&mut client, &mut buf).await;
        assert_eq!(op, OpCode::Close);
        assert_eq!(&payload[..2], &1001u16.to_be_bytes());
        assert_eq!(&payload[2..], b"bye");
        assert_eq!(client.read_buf(&mut buf).await.unwrap(), 0, "then EOF");
        drop(client);
        closing.await.unwrap();
    }
}
