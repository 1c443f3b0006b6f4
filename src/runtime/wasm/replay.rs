//! A request body kept for a retry: its frames pass through to the wire
//! unchanged while their bytes are copied aside, up to
//! [`REPLAY_LIMIT`](crate::egress::REPLAY_LIMIT), so that the egress
//! policy's response hook can have the request sent once more. Whether the
//! copy is whole is known only when the response arrives: a body still
//! being written then, one over the limit, one with trailers or one that
//! failed is not replayed. A body is whole when its end was seen, or when
//! all the bytes its `content-length` announced were (the connection sends
//! no more, and may not look for the end).

use crate::egress::REPLAY_LIMIT;
use ::bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use wasmtime_wasi_http::WasiBody;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The end has not been seen yet.
    Writing,
    /// Every byte was seen and kept.
    Complete,
    /// Over the limit, trailers, or an error: not replayable.
    Lost,
}

struct Copy {
    bytes: Vec<u8>,
    state: State,
    /// The body's `content-length`, when the request has one.
    announced: Option<u64>,
}

/// The copy of a [`TeeBody`]'s bytes, read when its response arrives.
#[derive(Clone)]
pub struct Kept(Arc<Mutex<Copy>>);

impl Kept {
    fn lock(&self) -> MutexGuard<'_, Copy> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The body to send again, if it was seen whole.
    pub fn replay(&self) -> Option<WasiBody> {
        let copy = self.lock();
        (copy.state == State::Complete).then(|| {
            let bytes = Bytes::copy_from_slice(&copy.bytes);
            http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
        })
    }
}

/// A body that keeps a copy of what it passes on.
pub struct TeeBody {
    inner: WasiBody,
    kept: Kept,
}

impl TeeBody {
    /// `body`, whose request announced `content_length` bytes (if it did),
    /// copied aside as it is sent.
    pub fn wrap(body: WasiBody, content_length: Option<u64>) -> (WasiBody, Kept) {
        let copy = Copy { bytes: Vec::new(), state: State::Writing, announced: content_length };
        let kept = Kept(Arc::new(Mutex::new(copy)));
        let tee = TeeBody { inner: body, kept: kept.clone() };
        tee.note_end();
        (tee.boxed_unsync(), kept)
    }

    /// A body that says it has ended may never be polled again: its copy
    /// is complete now.
    fn note_end(&self) {
        if self.inner.is_end_stream() {
            let mut copy = self.kept.lock();
            if copy.state == State::Writing {
                copy.state = State::Complete;
            }
        }
    }
}

impl Body for TeeBody {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        {
            let mut copy = self.kept.lock();
            match &frame {
                None if copy.state == State::Writing => copy.state = State::Complete,
                None => {}
                Some(Ok(frame)) => match frame.data_ref() {
                    Some(data) if copy.state == State::Writing && copy.bytes.len() + data.len() <= REPLAY_LIMIT => {
                        copy.bytes.extend_from_slice(data);
                        if copy.announced == Some(copy.bytes.len() as u64) {
                            copy.state = State::Complete;
                        }
                    }
                    _ => {
                        copy.state = State::Lost;
                        copy.bytes = Vec::new();
                    }
                },
                Some(Err(_)) => {
                    copy.state = State::Lost;
                    copy.bytes = Vec::new();
                }
            }
        }
        if matches!(frame, Some(Ok(_))) {
            self.note_end();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.note_end();
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of ready data frames.
    struct Chunks(std::collections::VecDeque<&'static [u8]>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = wasmtime_wasi_http::Error;
        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(Bytes::from_static(c)))))
        }
    }

    fn body(chunks: &[&'static [u8]]) -> WasiBody {
        Chunks(chunks.iter().copied().collect()).boxed_unsync()
    }

    fn drain(mut body: WasiBody) -> Vec<u8> {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            out.extend_from_slice(frame.unwrap().data_ref().unwrap());
        }
        out
    }

    #[test]
    fn a_body_seen_whole_is_replayed_byte_for_byte() {
        let (tee, kept) = TeeBody::wrap(body(&[b"abc", b"", b"def"]), None);
        assert!(kept.replay().is_none(), "not yet sent");
        assert_eq!(drain(tee), b"abcdef");
        assert_eq!(drain(kept.replay().unwrap()), b"abcdef");
    }

    #[test]
    fn a_body_is_whole_once_its_content_length_was_seen() {
        let (mut tee, kept) = TeeBody::wrap(body(&[b"abc", b"def"]), Some(6));
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let _ = Pin::new(&mut tee).poll_frame(&mut cx);
        assert!(kept.replay().is_none(), "3 of 6 bytes");
        let _ = Pin::new(&mut tee).poll_frame(&mut cx);
        assert_eq!(drain(kept.replay().unwrap()), b"abcdef", "the end itself was never polled");
    }

    #[test]
    fn an_empty_body_is_replayable_without_being_polled() {
        let empty = http_body_util::Empty::<Bytes>::new().map_err(|never| match never {}).boxed_unsync();
        let (_tee, kept) = TeeBody::wrap(empty, None);
        assert_eq!(drain(kept.replay().unwrap()), b"");
    }

    #[test]
    fn a_body_over_the_limit_is_sent_but_not_kept() {
        static BIG: [u8; REPLAY_LIMIT] = [7; REPLAY_LIMIT];
        let (tee, kept) = TeeBody::wrap(body(&[&BIG, b"x"]), None);
        assert_eq!(drain(tee).len(), REPLAY_LIMIT + 1);
        assert!(kept.replay().is_none());
        let (tee, kept) = TeeBody::wrap(body(&[&BIG]), None);
        drain(tee);
        assert_eq!(drain(kept.replay().unwrap()).len(), REPLAY_LIMIT, "exactly the limit is kept");
    }
}
