//! [`IdentityLayer`]: configuration shared by every [`IdentityService`].

use std::sync::Arc;

use tower::Layer;

use crate::{IdentityService, ProxyAuthorization, TokenValidator};

/// Requires a valid bearer token on every request and puts the caller's
/// [`Principal`](airlock_core::Principal) in the request's extensions.
#[derive(Clone)]
pub struct IdentityLayer {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) validator: Arc<dyn TokenValidator>,
    /// Extra `WWW-Authenticate` parameters (`authorization`, `resource`).
    pub(crate) challenge: Vec<(String, String)>,
    /// Hosts (by suffix) whose challenge names another `resource`.
    pub(crate) resources_by_host: Vec<(String, String)>,
    /// How a `CONNECT` is identified.
    pub(crate) proxy_authorization: ProxyAuthorization,
    /// Whether the verified token goes on as a [`CallerToken`](airlock_core::CallerToken).
    pub(crate) keep_caller_token: bool,
}

impl Shared {
    /// The challenge for a request to `host` (lower case, no port).
    pub(crate) fn challenge_for(
        &self,
        host: Option<&str>,
    ) -> std::borrow::Cow<'_, [(String, String)]> {
        let resource = host.and_then(|host| {
            self.resources_by_host
                .iter()
                .find(|(suffix, _)| host == suffix || host.ends_with(&format!(".{suffix}")))
                .map(|(_, resource)| resource)
        });
        match resource {
            Some(resource) => std::borrow::Cow::Owned(
                self.challenge
                    .iter()
                    .map(|(name, value)| {
                        let value = if name == "resource" { resource } else { value };
                        (name.clone(), value.clone())
                    })
                    .collect(),
            ),
            None => std::borrow::Cow::Borrowed(&self.challenge),
        }
    }
}

impl std::fmt::Debug for IdentityLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityLayer")
            .field("challenge", &self.shared.challenge)
            .finish_non_exhaustive()
    }
}

impl IdentityLayer {
    /// Validates tokens with `validator`.
    pub fn new(validator: impl TokenValidator) -> Self {
        Self::from_arc(Arc::new(validator))
    }

    /// Validates tokens with a shared validator.
    pub fn from_arc(validator: Arc<dyn TokenValidator>) -> Self {
        Self {
            shared: Arc::new(Shared {
                validator,
                challenge: Vec::new(),
                resources_by_host: Vec::new(),
                proxy_authorization: ProxyAuthorization::Off,
                keep_caller_token: false,
            }),
        }
    }

    /// Tells clients where to get a token: every 401's `WWW-Authenticate`
    /// carries `authorization="{authority}/{tenant}", resource="{resource}"`,
    /// the challenge Azure Key Vault sends, which Azure SDKs answer by asking
    /// that tenant for a token for `resource`.
    #[must_use]
    pub fn challenge(mut self, authority: &str, tenant: &str, resource: &str) -> Self {
        Arc::make_mut(&mut self.shared).challenge = vec![
            (
                "authorization".into(),
                format!("{}/{tenant}", authority.trim_end_matches('/')),
            ),
            ("resource".into(), resource.to_owned()),
        ];
        self
    }
}

impl IdentityLayer {
    /// Requests to `host` or any host under it name `resource` in their
    /// challenge instead: a client that reaches Azure's own hosts through
    /// the gateway in forward-proxy mode (`{vault}.vault.azure.net`) is sent
    /// to ask for Azure's audience (`https://vault.azure.net`), which Azure
    /// SDKs check against the host they called.
    ///
    /// ```
    /// # fn build(validator: impl airlock_identity::TokenValidator) {
    /// let layer = airlock_identity::IdentityLayer::new(validator)
    ///     .challenge("https://login.microsoftonline.com", "tenant-1", "api://airlock")
    ///     .challenge_resource_for("vault.azure.net", "https://vault.azure.net");
    /// # }
    /// ```
    #[must_use]
    pub fn challenge_resource_for(mut self, host: &str, resource: &str) -> Self {
        Arc::make_mut(&mut self.shared)
            .resources_by_host
            .push((host.to_ascii_lowercase(), resource.to_owned()));
        self
    }
}

impl IdentityLayer {
    /// How a `CONNECT` is identified, for a service that is a forward
    /// proxy (see [`ProxyAuthorization`]); by default it is an ordinary
    /// request and needs its own `Authorization`.
    ///
    /// ```
    /// # fn build(validator: impl airlock_identity::TokenValidator) {
    /// use airlock_identity::{IdentityLayer, ProxyAuthorization};
    /// let layer = IdentityLayer::new(validator).proxy_authorization(ProxyAuthorization::Required);
    /// # }
    /// ```
    #[must_use]
    pub fn proxy_authorization(mut self, mode: ProxyAuthorization) -> Self {
        Arc::make_mut(&mut self.shared).proxy_authorization = mode;
        self
    }

    /// Passes the verified token on as a [`CallerToken`](airlock_core::CallerToken)
    /// in the request's extensions (its `Authorization` header is removed
    /// all the same): for an upstream identity that acts on the caller's
    /// behalf ([`TokenExchange`](airlock_core::TokenExchange)). Off by default.
    #[must_use]
    pub fn keep_caller_token(mut self, keep: bool) -> Self {
        Arc::make_mut(&mut self.shared).keep_caller_token = keep;
        self
    }
}

impl<S> Layer<S> for IdentityLayer {
    type Service = IdentityService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IdentityService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
