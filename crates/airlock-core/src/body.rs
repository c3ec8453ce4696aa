//! Body helpers: one boxed body type for responses Airlock builds or rewrites,
//! and a bounded collect that refuses oversized bodies before reading them.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited, combinators::UnsyncBoxBody};

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
            },
            None => Self::default(),
        }
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
        match &mut self.get_mut().kind {
            Kind::Buffered { bytes, done } => {
                if *done || bytes.is_empty() {
                    *done = true;
                    return Poll::Ready(None);
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
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyError::TooLarge { limit })
        }
        Err(error) => Err(BodyError::Read(error)),
    }
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
