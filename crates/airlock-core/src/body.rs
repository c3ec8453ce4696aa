//! Body helpers: one boxed body type for responses Airlock builds or rewrites,
//! and a bounded collect that refuses oversized bodies before reading them.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes, BytesMut};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited, combinators::UnsyncBoxBody};

/// The slices a buffered body that holds something is handed out in
/// (see [`AirlockBody::hold`]).
const HELD_SLICE: usize = 64 * 1024;

/// A boxed error, as bodies and services in the tower ecosystem use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Airlock's one body type, for requests and responses alike.
///
/// A body is either **buffered** (its bytes are in memory: a layer read it,
/// or Airlock built it) or **streaming** (anything else, boxed). The first
/// layer that needs a request body reads it once, within its limit, and
/// passes it on buffered; every later reader ([`collect_limited`], the
/// upstream) takes the same bytes without reading or copying again.
///
/// ```
/// use airlock_core::AirlockBody;
///
/// let body = AirlockBody::from(bytes::Bytes::from_static(b"{}"));
/// assert_eq!(body.buffered().map(|b| &b[..]), Some(&b"{}"[..]));
/// // Wrapping it again keeps it as it is: no second box, still buffered.
/// let again = AirlockBody::new(body);
/// assert!(again.buffered().is_some());
/// ```
pub struct AirlockBody {
    kind: Kind,
    /// Kept alive as long as the body: see [`AirlockBody::hold`].
    guard: Option<Box<dyn Any + Send>>,
}

enum Kind {
    /// The whole body; `done` once its one frame was yielded.
    Buffered {
        bytes: Bytes,
        done: bool,
    },
    Streaming(UnsyncBoxBody<Bytes, BoxError>),
}

impl AirlockBody {
    /// Wraps any body; an `AirlockBody` is returned as it is (not boxed
    /// again, and a buffered one stays buffered).
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(airlock) = (&mut slot as &mut dyn Any).downcast_mut::<Option<AirlockBody>>()
            && let Some(body) = airlock.take()
        {
            return body;
        }
        match slot {
            Some(body) => Self {
                kind: Kind::Streaming(body.map_err(Into::into).boxed_unsync()),
                guard: None,
            },
            None => Self::default(),
        }
    }

    /// Keeps `guard` alive until the body is dropped (after it was sent, or
    /// when the client went away): a share of a memory budget, say, that
    /// must last as long as the bytes it accounts for. The body stays as it
    /// was (a buffered one still buffered), but a buffered one is then read
    /// in copied 64 KiB slices, so that a writer that queues what it reads
    /// cannot take it all and drop the body long before it has sent it, nor
    /// keep the whole allocation alive through the last slices it queued.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use airlock_core::full;
    ///
    /// let budget = Arc::new(tokio::sync::Semaphore::new(10));
    /// let share = Arc::clone(&budget).try_acquire_many_owned(4).unwrap();
    /// let body = full("held").hold(share);
    /// assert!(body.buffered().is_some());
    /// assert_eq!(budget.available_permits(), 6);
    /// drop(body);
    /// assert_eq!(budget.available_permits(), 10);
    /// ```
    #[must_use]
    pub fn hold(mut self, guard: impl Any + Send) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// Takes what the body holds (see [`hold`](Self::hold)), for a layer
    /// that replaces a body in memory by another to hand it on.
    pub fn take_hold(&mut self) -> Option<Box<dyn Any + Send>> {
        self.guard.take()
    }

    /// The whole body, when it is in memory and not yet consumed.
    pub fn buffered(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Buffered { bytes, done: false } => Some(bytes),
            _ => None,
        }
    }
}

impl Default for AirlockBody {
    /// An empty, buffered body.
    fn default() -> Self {
        Self::from(Bytes::new())
    }
}

impl From<Bytes> for AirlockBody {
    fn from(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Buffered { bytes, done: false },
            guard: None,
        }
    }
}

impl std::fmt::Debug for AirlockBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Buffered { bytes, done } => f
                .debug_struct("AirlockBody::Buffered")
                .field("len", &bytes.len())
                .field("done", done)
                .finish(),
            Kind::Streaming(_) => f.write_str("AirlockBody::Streaming"),
        }
    }
}

impl Body for AirlockBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Buffered { bytes, done } => {
                if *done || bytes.is_empty() {
                    *done = true;
                    return Poll::Ready(None);
                }
                // A body holding a memory share hands its bytes out in
                // copied slices: it (and the share) lives until the writer
                // has taken nearly all of them, and what the writer still
                // holds then is its few slices, not the whole allocation.
                if this.guard.is_some() && bytes.len() > HELD_SLICE {
                    let slice = Bytes::copy_from_slice(&bytes[..HELD_SLICE]);
                    bytes.advance(HELD_SLICE);
                    return Poll::Ready(Some(Ok(Frame::data(slice))));
                }
                *done = true;
                Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes)))))
            }
            Kind::Streaming(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Buffered { bytes, done } => *done || bytes.is_empty(),
            Kind::Streaming(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Buffered { done: true, .. } => SizeHint::with_exact(0),
            Kind::Buffered { bytes, .. } => SizeHint::with_exact(bytes.len() as u64),
            Kind::Streaming(body) => body.size_hint(),
        }
    }
}

/// Boxes any body into an [`AirlockBody`] (see [`AirlockBody::new`]).
pub fn boxed<B>(body: B) -> AirlockBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    AirlockBody::new(body)
}

/// A complete, buffered body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> AirlockBody {
    AirlockBody::from(bytes.into())
}

/// An empty body.
pub fn empty() -> AirlockBody {
    AirlockBody::default()
}

/// Why a body could not be collected.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body (or its declared `Content-Length`) exceeds the limit.
    #[error("body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body could not be read.
    #[error("body could not be read: {0}")]
    Read(BoxError),
}

/// Reads a whole body, refusing one over `limit` bytes.
///
/// A declared `Content-Length` over the limit is refused before any byte is
/// read; a body that lies about its length is still cut at the limit. A
/// buffered [`AirlockBody`] is not read again: its bytes are returned as
/// they are (no copy).
///
/// ```
/// # tokio_test();
/// # fn tokio_test() { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use airlock_core::{collect_limited, full, BodyError};
/// use http::HeaderMap;
///
/// let ok = collect_limited(full("hello"), &HeaderMap::new(), 10).await.unwrap();
/// assert_eq!(ok, "hello");
/// let err = collect_limited(full("hello world"), &HeaderMap::new(), 10).await.unwrap_err();
/// assert!(matches!(err, BodyError::TooLarge { limit: 10 }));
/// # }) }
/// ```
pub async fn collect_limited<B>(
    body: B,
    headers: &HeaderMap,
    limit: u64,
) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + 'static,
    B::Error: Into<BoxError>,
{
    if declared_length(headers).is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    if let Some(bytes) = (&body as &dyn Any)
        .downcast_ref::<AirlockBody>()
        .and_then(AirlockBody::buffered)
    {
        return if bytes.len() as u64 > limit {
            Err(BodyError::TooLarge { limit })
        } else {
            Ok(bytes.clone())
        };
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    if let Some(length) = declared_length(headers) {
        // Known length: one allocation of that size, filled frame by frame
        // (collecting the frames, then joining them, would hold it twice).
        return collect_declared(body, length, limit).await;
    }
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyError::TooLarge { limit })
        }
        Err(error) => Err(BodyError::Read(error)),
    }
}

/// Reads a body that declared `length` (at most `limit`) into one
/// allocation; a body longer than declared is still cut at `limit`.
async fn collect_declared<B>(body: B, length: u64, limit: u64) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let capacity = usize::try_from(length).unwrap_or(0);
    collect_frames(body, capacity, limit, |_| true)
        .await?
        .ok_or_else(|| BodyError::Read("the body was refused while it was read".into()))
}

/// Reads `body` frame by frame into one buffer (starting at `capacity`
/// bytes), refusing it past `limit`. Before a frame is kept, `admit` is
/// asked with the total it would make; `Ok(None)` when it says no.
pub(crate) async fn collect_frames<B>(
    body: B,
    capacity: usize,
    limit: u64,
    mut admit: impl FnMut(u64) -> bool,
) -> Result<Option<Bytes>, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Read(error.into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = (collected.len() + data.len()) as u64;
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        if !admit(total) {
            return Ok(None);
        }
        collected.extend_from_slice(&data);
    }
    Ok(Some(collected.freeze()))
}

/// The `Content-Length` a message declares, if it declares a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[tokio::test]
    async fn declared_length_over_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("1000"));
        // The body itself is small: the pre-check must not read it.
        let err = collect_limited(full("tiny"), &headers, 100)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 100 }));
    }

    #[tokio::test]
    async fn body_longer_than_declared_is_still_cut() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
        let err = collect_limited(full("far more than three"), &headers, 5)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn a_buffered_body_is_taken_as_it_is_and_still_limited() {
        let bytes = Bytes::from_static(b"0123456789");
        let read = collect_limited(full(bytes.clone()), &HeaderMap::new(), 10)
            .await
            .unwrap();
        // The same allocation: not copied, not read frame by frame.
        assert_eq!(read.as_ptr(), bytes.as_ptr());
        let err = collect_limited(full(bytes), &HeaderMap::new(), 9)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 9 }));
    }

    #[tokio::test]
    async fn a_held_body_lives_until_its_last_slice_is_taken() {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bytes = Bytes::from(vec![7u8; HELD_SLICE * 2 + 10]);
        let mut body = full(bytes.clone()).hold(Flag(dropped.clone()));
        assert_eq!(body.buffered(), Some(&bytes), "still buffered");
        let mut slices = Vec::new();
        while let Some(frame) = body.frame().await {
            slices.push(frame.unwrap().into_data().unwrap());
            assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        }
        assert_eq!(
            slices.iter().map(Bytes::len).collect::<Vec<_>>(),
            [HELD_SLICE, HELD_SLICE, 10]
        );
        assert_eq!(slices.concat(), bytes);
        drop(body);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        // Without a hold: one frame, as before.
        let mut plain = full(bytes.clone());
        assert_eq!(
            plain.frame().await.unwrap().unwrap().into_data().unwrap(),
            bytes
        );
    }

    #[tokio::test]
    async fn a_streaming_body_reads_to_the_same_bytes() {
        let body = AirlockBody::new(Chunks(vec![Bytes::from("cd"), Bytes::from("ab")]));
        assert!(body.buffered().is_none());
        let read = collect_limited(body, &HeaderMap::new(), 10).await.unwrap();
        assert_eq!(read, "abcd");
    }

    #[tokio::test]
    async fn exact_limit_is_accepted() {
        let bytes = collect_limited(full("12345"), &HeaderMap::new(), 5)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 5);
    }

    /// A body of several frames, popped from the end.
    struct Chunks(Vec<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Ready(self.0.pop().map(|chunk| Ok(http_body::Frame::data(chunk))))
        }
    }

    /// A body whose first frame is a read error, like a reset connection.
    struct Failing;

    impl Body for Failing {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
        }
    }

    #[tokio::test]
    async fn read_errors_are_reported_as_such() {
        let err = collect_limited(Failing, &HeaderMap::new(), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::Read(_)), "{err:?}");
    }
}
