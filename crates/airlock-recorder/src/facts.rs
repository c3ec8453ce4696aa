//! [`RequestFacts`]: what the recorder notes of a request as it arrives.

use http::Request;
use http::header::HOST;

use airlock_core::REQUEST_ID;

use crate::sessions::SESSION_HEADER;

/// The parts of a request an event keeps. Never the query (it can carry SAS
/// signatures) and never a credential header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RequestFacts {
    pub(crate) method: String,
    pub(crate) host: Option<String>,
    pub(crate) path: String,
    pub(crate) api_version: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) session_header: Option<String>,
}

impl RequestFacts {
    pub(crate) fn of<B>(request: &Request<B>) -> Self {
        // `HeaderName`s: a `&str` is parsed again on every lookup.
        const SESSION: http::HeaderName = http::HeaderName::from_static(SESSION_HEADER);
        let header = |name: http::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let uri = request.uri();
        Self {
            method: request.method().as_str().to_owned(),
            host: header(HOST).or_else(|| uri.authority().map(|a| a.as_str().to_owned())),
            path: uri.path().to_owned(),
            api_version: api_version(uri.query()),
            request_id: header(REQUEST_ID),
            session_header: header(SESSION),
        }
    }
}

/// The `api-version` query parameter (the name compared case-insensitively,
/// as ARM does), as sent.
fn api_version(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("api-version"))
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn notes_method_host_path_api_version_and_ids_but_never_the_query() {
        let request = Request::get(
            "https://ignored.example/subscriptions/s/resourcegroups?api-version=2021-04-01&sig=SECRET",
        )
        .header("host", "management.azure.com")
        .header(REQUEST_ID, "rid-1")
        .header(SESSION_HEADER, "task-1")
        .header("authorization", "Bearer TOKEN")
        .body(())
        .unwrap();
        let facts = RequestFacts::of(&request);
        assert_eq!(
            facts,
            RequestFacts {
                method: "GET".into(),
                host: Some("management.azure.com".into()),
                path: "/subscriptions/s/resourcegroups".into(),
                api_version: Some("2021-04-01".into()),
                request_id: Some("rid-1".into()),
                session_header: Some("task-1".into()),
            }
        );
        assert!(!format!("{facts:?}").contains("SECRET"));
        assert!(!format!("{facts:?}").contains("TOKEN"));
    }

    #[test]
    fn host_falls_back_to_the_uri_authority() {
        let request = Request::get("https://kv1.vault.azure.net/secrets/s")
            .body(())
            .unwrap();
        let facts = RequestFacts::of(&request);
        assert_eq!(facts.host.as_deref(), Some("kv1.vault.azure.net"));
        assert_eq!(facts.api_version, None);
    }

    #[test]
    fn api_version_is_found_anywhere_in_the_query() {
        assert_eq!(api_version(Some("a=1&API-Version=7.4")), Some("7.4".into()));
        assert_eq!(api_version(Some("api-version")), None);
        assert_eq!(api_version(Some("x-api-version=1")), None);
        assert_eq!(api_version(None), None);
    }
}
