//! The bodies the recorder wraps: [`RequestBody`] counts what the client
//! sent; [`ResponseBody`] counts what it is sent, notes how the response
//! ended, and (fail-closed) holds back the end until the event is stored.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use airlock_core::{BoxError, BoxFuture};
use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::exchange::Exchange;
use crate::{Outcome, RecorderError};

pin_project! {
    /// The request body inner services read: the client's, counted for the
    /// event's `bytesIn`.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        received: Arc<AtomicU64>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, received: Arc<AtomicU64>) -> Self {
        Self { inner, received }
    }
}

impl<B> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("received", &self.received.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.received
                .fetch_add(data.remaining() as u64, Ordering::Relaxed);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Where a [`ResponseBody`] stands.
enum State {
    /// Passing frames on, counting them.
    Streaming,
    /// The inner body ended (or yielded its last frame, `held`): waiting for
    /// the event to be stored before the client gets the end.
    Storing {
        held: Option<Frame<Bytes>>,
        stored: BoxFuture<'static, Result<(), RecorderError>>,
    },
    /// The event is stored; whatever the inner body still has (trailers)
    /// passes through.
    Recorded,
    /// Nothing more to send.
    Ended,
}

pin_project! {
    /// The response body clients read: the inner service's, with the end
    /// held back until its audit event is stored (fail-closed). See
    /// [`RecorderLayer`](crate::RecorderLayer) for the guarantee.
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        state: State,
        exchange: Option<Exchange>,
        // The length the response declared (`Content-Length` or an exact
        // size hint): HTTP/1 ends the message when it is reached, without
        // asking for the end of the body.
        declared: Option<u64>,
    }
}

impl<B> ResponseBody<B> {
    /// A body still to be streamed and recorded when it ends.
    pub(crate) fn new(inner: B, exchange: Exchange, declared: Option<u64>) -> Self {
        Self {
            inner,
            state: State::Streaming,
            exchange: Some(exchange),
            declared,
        }
    }

    /// A body whose event is already recorded (responses without a body).
    pub(crate) fn recorded(inner: B) -> Self {
        Self {
            inner,
            state: State::Recorded,
            exchange: None,
            declared: None,
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Streaming => "streaming",
            State::Storing { .. } => "storing",
            State::Recorded => "recorded",
            State::Ended => "ended",
        };
        f.debug_struct("ResponseBody")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            match this.state {
                State::Streaming => match ready!(this.inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        let mut sent = 0;
                        if let (Some(data), Some(exchange)) =
                            (frame.data_ref(), this.exchange.as_mut())
                        {
                            sent = exchange.sent(data.len());
                        }
                        let last = this.inner.is_end_stream()
                            || this.declared.is_some_and(|declared| sent >= declared);
                        if !last {
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        match finish(this.exchange) {
                            Some(stored) => {
                                *this.state = State::Storing {
                                    held: Some(frame),
                                    stored,
                                };
                            }
                            None => {
                                *this.state = State::Recorded;
                                return Poll::Ready(Some(Ok(frame)));
                            }
                        }
                    }
                    Some(Err(error)) => {
                        if let Some(mut exchange) = this.exchange.take() {
                            exchange.finish_detached(Outcome::Failed);
                        }
                        *this.state = State::Ended;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    None => match finish(this.exchange) {
                        Some(stored) => *this.state = State::Storing { held: None, stored },
                        None => {
                            *this.state = State::Ended;
                            return Poll::Ready(None);
                        }
                    },
                },
                State::Storing { held, stored } => {
                    let result = ready!(stored.as_mut().poll(cx));
                    let held = held.take();
                    match (result, held) {
                        (Ok(()), Some(frame)) => {
                            *this.state = State::Recorded;
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        (Ok(()), None) => {
                            *this.state = State::Ended;
                            return Poll::Ready(None);
                        }
                        (Err(error), _) => {
                            *this.state = State::Ended;
                            return Poll::Ready(Some(Err(Box::new(error))));
                        }
                    }
                }
                State::Recorded => {
                    let frame = ready!(this.inner.as_mut().poll_frame(cx));
                    if frame.is_none() {
                        *this.state = State::Ended;
                    }
                    return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
                }
                State::Ended => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.state {
            // Not before the event is stored: the client must ask for the end.
            State::Streaming | State::Storing { .. } => false,
            State::Recorded => self.inner.is_end_stream(),
            State::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Streaming | State::Recorded => self.inner.size_hint(),
            State::Storing { held, .. } => {
                let held = held
                    .as_ref()
                    .and_then(Frame::data_ref)
                    .map_or(0, |data| data.len() as u64);
                let rest = self.inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(held));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(held));
                }
                hint
            }
            State::Ended => SizeHint::with_exact(0),
        }
    }
}

/// Ends the exchange as completed; the future to wait for, fail-closed.
fn finish(
    exchange: &mut Option<Exchange>,
) -> Option<BoxFuture<'static, Result<(), RecorderError>>> {
    exchange.take()?.finish(Outcome::Completed)
}
