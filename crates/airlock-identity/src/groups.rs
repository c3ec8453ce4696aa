//! Group overage: when a principal is in more groups than fit in a token,
//! Entra ID leaves them out, and a [`GroupResolver`] looks them up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use airlock_core::{BoxFuture, HttpClient, TokenProvider};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Request, StatusCode};
use serde::Deserialize;

/// Looks up the groups of a principal whose token had too many to carry.
///
/// ```
/// use airlock_core::BoxFuture;
/// use airlock_identity::{GroupResolver, GroupsError};
///
/// /// Everyone is in the same group: a stand-in for a directory.
/// struct OneGroup;
///
/// impl GroupResolver for OneGroup {
///     fn member_groups<'a>(&'a self, _tenant: &'a str, _object_id: &'a str) -> BoxFuture<'a, Result<Vec<String>, GroupsError>> {
///         Box::pin(async { Ok(vec!["00000000-0000-0000-0000-0000000000c1".to_owned()]) })
///     }
/// }
/// ```
pub trait GroupResolver: Send + Sync + 'static {
    /// The object ids of every group `object_id` (in `tenant`) belongs to,
    /// transitively.
    fn member_groups<'a>(
        &'a self,
        tenant: &'a str,
        object_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, GroupsError>>;
}

/// Why groups could not be looked up.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GroupsError(pub String);

/// Microsoft Graph's `POST /v1.0/directoryObjects/{id}/getMemberGroups`,
/// called with the gateway's own credential (it needs
/// `GroupMember.Read.All` or `Directory.Read.All`), cached per principal.
pub struct GraphGroupResolver {
    client: Arc<dyn HttpClient>,
    tokens: Arc<dyn TokenProvider>,
    graph_url: String,
    audience: String,
    ttl: Duration,
    cache: Mutex<GroupCache>,
}

/// Groups by `(tenant, object id)`, with when they were fetched.
type GroupCache = HashMap<(String, String), (Instant, Arc<Vec<String>>)>;

impl std::fmt::Debug for GraphGroupResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphGroupResolver")
            .field("graph_url", &self.graph_url)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// How many principals' groups are cached at most.
const MAX_CACHED_PRINCIPALS: usize = 10_000;

/// The public cloud's Graph endpoint.
pub const GRAPH_URL: &str = "https://graph.microsoft.com";

impl GraphGroupResolver {
    /// Resolves through `graph_url` (normally [`GRAPH_URL`]), asking
    /// `tokens` for a token with `graph_url` as the audience; answers are
    /// cached for ten minutes (see [`ttl`](Self::ttl)).
    pub fn new(
        client: Arc<dyn HttpClient>,
        tokens: Arc<dyn TokenProvider>,
        graph_url: impl Into<String>,
    ) -> Self {
        let graph_url = graph_url.into().trim_end_matches('/').to_owned();
        Self {
            client,
            tokens,
            audience: graph_url.clone(),
            graph_url,
            ttl: Duration::from_secs(600),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// How long a principal's groups are reused before Graph is asked again.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The audience of the gateway's Graph token, if not the Graph URL itself.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    async fn fetch(&self, object_id: &str) -> Result<Vec<String>, GroupsError> {
        let token = self
            .tokens
            .token(&self.audience)
            .await
            .map_err(|e| GroupsError(format!("no token for Microsoft Graph: {e}")))?;
        let url = format!(
            "{}/v1.0/directoryObjects/{object_id}/getMemberGroups",
            self.graph_url
        );
        let mut request = Request::post(url)
            .body(Bytes::from_static(br#"{"securityEnabledOnly":false}"#))
            .map_err(|e| GroupsError(format!("bad Graph request: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let bearer = token
            .authorization()
            .ok_or_else(|| GroupsError("the Graph token is not a valid header value".into()))?;
        headers.insert(AUTHORIZATION, bearer.clone());
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| GroupsError(format!("Microsoft Graph could not be reached: {e}")))?;
        if response.status() != StatusCode::OK {
            return Err(GroupsError(format!(
                "Microsoft Graph answered {} to getMemberGroups",
                response.status()
            )));
        }
        #[derive(Deserialize)]
        struct MemberGroups {
            value: Vec<String>,
        }
        let groups: MemberGroups = serde_json::from_slice(response.body()).map_err(|e| {
            GroupsError(format!(
                "Microsoft Graph's getMemberGroups answer is not understood: {e}"
            ))
        })?;
        Ok(groups.value)
    }
}

impl GroupResolver for GraphGroupResolver {
    fn member_groups<'a>(
        &'a self,
        tenant: &'a str,
        object_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, GroupsError>> {
        Box::pin(async move {
            // An object id goes into a URL path: only GUID characters.
            if object_id.is_empty()
                || !object_id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(GroupsError(
                    "the token's object id is not a directory object id, so its groups cannot be looked up".into(),
                ));
            }
            let key = (tenant.to_owned(), object_id.to_owned());
            if let Some((at, groups)) = self
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                && at.elapsed() < self.ttl
            {
                return Ok(groups.as_ref().clone());
            }
            let groups = Arc::new(self.fetch(object_id).await?);
            let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= MAX_CACHED_PRINCIPALS {
                cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
                if cache.len() >= MAX_CACHED_PRINCIPALS {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), groups.clone()));
            Ok(groups.as_ref().clone())
        })
    }
}
