//! The origin a client addressed, when it is not the gateway's own.

/// The origin (`https://host`) a client addressed when that is not the
/// gateway's public URL: a forward proxy inserts it on every request it
/// intercepted in a `CONNECT` tunnel (`https://management.azure.com`).
///
/// A URL the gateway answers for the client to follow (an async approval's
/// operation URL) names this origin when the request carries one, so the
/// client reaches it the way it reached the request: through its proxy, to
/// a host that proxy lets it open.
///
/// ```
/// use airlock_core::ClientOrigin;
///
/// let mut request = http::Request::new(());
/// request
///     .extensions_mut()
///     .insert(ClientOrigin::https("management.azure.com"));
/// let origin = request.extensions().get::<ClientOrigin>().unwrap();
/// assert_eq!(origin.as_str(), "https://management.azure.com");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOrigin(String);

impl ClientOrigin {
    /// `https://{host}`.
    pub fn https(host: &str) -> Self {
        Self(format!("https://{host}"))
    }

    /// The origin, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
