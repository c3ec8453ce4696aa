//! Body helpers: one boxed body type for responses Airlock builds or rewrites,
//! and a bounded collect that refuses oversized bodies before reading them.

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full, Limited, combinators::UnsyncBoxBody};

/// A boxed error, as bodies and services in the tower ecosystem use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of responses Airlock produces or rewrites.
pub type AirlockBody = UnsyncBoxBody<Bytes, BoxError>;

/// Boxes any body into an [`AirlockBody`].
pub fn boxed<B>(body: B) -> AirlockBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> AirlockBody {
    boxed(Full::new(bytes.into()))
}

/// An empty body.
pub fn empty() -> AirlockBody {
    boxed(Empty::<Bytes>::new())
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
/// read; a body that lies about its length is still cut at the limit.
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
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if declared_length(headers).is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge { limit });
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
    async fn exact_limit_is_accepted() {
        let bytes = collect_limited(full("12345"), &HeaderMap::new(), 5)
            .await
            .unwrap();
        assert_eq!(bytes.len(), 5);
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
