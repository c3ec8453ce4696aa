//! The request an async approval stores until it is approved, encrypted at
//! rest: [`StoredRequest`], [`SealedRequest`] and the [`RequestSealer`].

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};

use crate::ApprovalId;

/// What of a request is kept to send it later: method, path and query,
/// end-to-end headers and the body. The credential is never among them (the
/// identity layer took it off before the request got here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRequest {
    /// The method.
    pub method: Method,
    /// The path and query (origin form).
    pub uri: Uri,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl StoredRequest {
    /// Keeps `parts` and `body`, minus hop-by-hop headers, `Authorization`
    /// and Airlock's own `x-airlock-*`.
    pub fn from_parts(parts: &http::request::Parts, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            let n = name.as_str();
            let dropped = matches!(
                n,
                "authorization"
                    | "connection"
                    | "keep-alive"
                    | "proxy-authorization"
                    | "te"
                    | "trailer"
                    | "transfer-encoding"
                    | "upgrade"
                    | "host"
                    | "content-length"
            ) || n.starts_with("x-airlock-");
            if !dropped {
                headers.append(name.clone(), value.clone());
            }
        }
        let uri = parts
            .uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        Self {
            method: parts.method.clone(),
            uri,
            headers,
            body,
        }
    }

    /// The request again, with `host` as its `Host` header.
    pub fn into_request(self, host: Option<HeaderValue>) -> Request<Bytes> {
        let mut request = Request::new(self.body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.headers_mut() = self.headers;
        if let Some(host) = host {
            request.headers_mut().insert(http::header::HOST, host);
        }
        request
    }

    fn encode(&self) -> Vec<u8> {
        self.encode_with(self.method.as_str().as_bytes())
    }

    /// Encoded with `head` in the method's place.
    fn encode_with(&self, head: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 512);
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(head);
        field(self.uri.to_string().as_bytes());
        field(&(self.headers.len() as u32).to_be_bytes());
        for (name, value) in &self.headers {
            field(name.as_str().as_bytes());
            field(value.as_bytes());
        }
        field(&self.body);
        out
    }

    fn decode(input: &[u8]) -> Option<Self> {
        let (method, mut request) = Self::decode_with(input)?;
        request.method = Method::from_bytes(&method).ok()?;
        Some(request)
    }

    /// Decoded with whatever is in the method's place, returned as is.
    fn decode_with(mut input: &[u8]) -> Option<(Vec<u8>, Self)> {
        let mut field = || -> Option<&[u8]> {
            let (len, rest) = input.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len) as usize;
            let (value, rest) = (rest.get(..len)?, rest.get(len..)?);
            input = rest;
            Some(value)
        };
        let head = field()?.to_vec();
        let uri = Uri::try_from(field()?).ok()?;
        let count = u32::from_be_bytes(field()?.try_into().ok()?);
        let mut headers = HeaderMap::new();
        for _ in 0..count {
            let name = HeaderName::from_bytes(field()?).ok()?;
            let value = HeaderValue::from_bytes(field()?).ok()?;
            headers.append(name, value);
        }
        let body = Bytes::copy_from_slice(field()?);
        Some((
            head,
            Self {
                method: Method::GET,
                uri,
                headers,
                body,
            },
        ))
    }
}

/// An answer held for approval (`[[answer]]`): status, headers and body
/// as they would reach the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The status.
    pub status: http::StatusCode,
    /// The headers (hop-by-hop ones and `Content-Length` dropped).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl StoredAnswer {
    /// Keeps `parts` and `body`, minus hop-by-hop headers and `Content-Length`.
    pub fn from_parts(parts: &http::response::Parts, body: Bytes) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            let dropped = matches!(
                name.as_str(),
                "connection"
                    | "keep-alive"
                    | "te"
                    | "trailer"
                    | "transfer-encoding"
                    | "upgrade"
                    | "content-length"
            );
            if !dropped {
                headers.append(name.clone(), value.clone());
            }
        }
        Self {
            status: parts.status,
            headers,
            body,
        }
    }

    /// Encoded as a [`StoredRequest`] is: the status in the method's place,
    /// a marker in the URI's.
    fn encode(&self) -> Vec<u8> {
        StoredRequest {
            method: Method::GET,
            uri: Uri::from_static(ANSWER_MARKER),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
        .encode_with(self.status.as_str().as_bytes())
    }

    fn decode(input: &[u8]) -> Option<Self> {
        let (status, request) = StoredRequest::decode_with(input)?;
        if request.uri != ANSWER_MARKER {
            return None;
        }
        Some(Self {
            status: http::StatusCode::from_bytes(&status).ok()?,
            headers: request.headers,
            body: request.body,
        })
    }
}

/// Where a stored answer's URI would be: no request has this path.
const ANSWER_MARKER: &str = "/.airlock-held-answer";

/// A [`StoredRequest`] encrypted with AES-256-GCM, bound to its approval's
/// id: opaque bytes a store keeps and hands back.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedRequest(Vec<u8>);

impl SealedRequest {
    /// Wraps bytes a store kept.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes to keep.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SealedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedRequest({} bytes)", self.0.len())
    }
}

/// Why a sealed request could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// Wrong key, another approval's request, or the bytes were changed.
    #[error("the stored request does not open with this deployment key, or was altered")]
    Open,
    /// The system's random source failed.
    #[error("no random nonce could be drawn")]
    Random,
}

/// Encrypts stored requests with a key derived (HKDF-SHA256) from the
/// deployment's secret key, the one the masking tokens come from.
///
/// ```
/// use airlock_approval::{ApprovalId, RequestSealer, StoredRequest};
///
/// let sealer = RequestSealer::new(&[7u8; 32]);
/// let id = ApprovalId::new();
/// let request = StoredRequest {
///     method: http::Method::PUT,
///     uri: "/subscriptions/s/resourceGroups/rg?api-version=2021-04-01".parse().unwrap(),
///     headers: http::HeaderMap::new(),
///     body: "{\"location\":\"westeurope\"}".into(),
/// };
/// let sealed = sealer.seal(id, &request).unwrap();
/// assert!(!sealed.as_bytes().windows(10).any(|w| w == b"westeurope"));
/// assert_eq!(sealer.open(id, &sealed).unwrap(), request);
/// assert!(sealer.open(ApprovalId::new(), &sealed).is_err());
/// ```
pub struct RequestSealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for RequestSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestSealer(..)")
    }
}

impl RequestSealer {
    /// Derives the encryption key from the deployment's secret.
    pub fn new(deployment_key: &[u8]) -> Self {
        let prk = Salt::new(HKDF_SHA256, b"airlock").extract(deployment_key);
        let okm = prk
            .expand(&[b"airlock-approval-stored-request-v1"], &AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        }
    }

    /// Encrypts `request` for approval `id`: a random nonce, then the
    /// ciphertext and tag.
    pub fn seal(
        &self,
        id: ApprovalId,
        request: &StoredRequest,
    ) -> Result<SealedRequest, SealError> {
        self.seal_bytes(id, request.encode())
    }

    /// Decrypts the request sealed for approval `id`.
    pub fn open(&self, id: ApprovalId, sealed: &SealedRequest) -> Result<StoredRequest, SealError> {
        StoredRequest::decode(&self.open_bytes(id, sealed)?).ok_or(SealError::Open)
    }

    /// Encrypts an answer held for approval `id` (kept where a stored
    /// request would be, and erased as one is).
    pub fn seal_answer(
        &self,
        id: ApprovalId,
        answer: &StoredAnswer,
    ) -> Result<SealedRequest, SealError> {
        self.seal_bytes(id, answer.encode())
    }

    /// Decrypts the answer held for approval `id`.
    pub fn open_answer(
        &self,
        id: ApprovalId,
        sealed: &SealedRequest,
    ) -> Result<StoredAnswer, SealError> {
        StoredAnswer::decode(&self.open_bytes(id, sealed)?).ok_or(SealError::Open)
    }

    /// A random nonce, then the ciphertext and tag, bound to `id`.
    fn seal_bytes(&self, id: ApprovalId, mut data: Vec<u8>) -> Result<SealedRequest, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_uuid().as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(SealedRequest(out))
    }

    fn open_bytes(&self, id: ApprovalId, sealed: &SealedRequest) -> Result<Vec<u8>, SealError> {
        let (nonce, data) = sealed
            .0
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(SealError::Open)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(id.as_uuid().as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Open)?;
        let length = plain.len();
        data.truncate(length);
        Ok(data)
    }
}
