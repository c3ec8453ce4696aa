//! Why a request could not be classified, and the one place that becomes a response.

use airlock_core::AirlockError;

/// A request Airlock refuses to classify because it is malformed or
/// ambiguous: it could make Azure perform something other than what Airlock
/// would authorize. Each is answered `400` with an ARM-style code; the text
/// names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyError {
    /// A header asks the server to treat the request as another HTTP method.
    #[error(
        "the '{header}' header is not accepted: Airlock authorizes a request by its HTTP method, and a method override could make Azure perform another operation; send the intended method itself (e.g. DELETE) and drop '{header}'"
    )]
    MethodOverride {
        /// The header's name.
        header: &'static str,
    },
    /// The path does not start with `/`.
    #[error(
        "the request path must start with '/'; send the resource's path, e.g. /subscriptions/{{id}}"
    )]
    RelativePath,
    /// `%2F` or `%5C` in the path: a separator hidden inside a name.
    #[error(
        "the request path contains an encoded separator ('{escape}'), which could make one resource look like another; use '/' only between segments and never percent-encode '/' or '\\'"
    )]
    EncodedSeparator {
        /// The escape as the client wrote it, e.g. `%2f`.
        escape: String,
    },
    /// A `%25XX` sequence: the path is percent-encoded twice.
    #[error(
        "the request path is percent-encoded twice ('{escape}' decodes to another escape), which a second decoder would read differently; percent-encode each character once"
    )]
    DoubleEncoded {
        /// The escape as the client wrote it, e.g. `%252f`.
        escape: String,
    },
    /// A `.` or `..` segment, plain or percent-encoded.
    #[error(
        "the request path contains the dot segment '{segment}'; Airlock does not resolve '.' or '..' (the result could name another resource than the one authorized): send the resource's full path without them"
    )]
    DotSegment {
        /// The segment as the client wrote it.
        segment: String,
    },
    /// `//` inside the path.
    #[error(
        "the request path contains an empty segment ('//'); remove the duplicate '/' (Azure resource ids have none)"
    )]
    EmptySegment,
    /// `;` in the path, which some servers read as a path parameter.
    #[error(
        "the request path contains ';' (a path parameter, which some servers strip); Azure resource ids never contain it: remove it"
    )]
    PathParameter,
    /// `\` in the path.
    #[error("the request path contains a backslash; use '/' as the only separator")]
    Backslash,
    /// A control character, plain or percent-encoded.
    #[error(
        "the request path contains a control character (raw or percent-encoded); remove it from the path"
    )]
    ControlCharacter,
    /// `%` not followed by two hex digits.
    #[error(
        "the request path has a malformed percent-escape; '%' must be followed by two hex digits (write '%25' for a literal '%')"
    )]
    BadEscape,
    /// The decoded path is not UTF-8.
    #[error(
        "the request path is not valid UTF-8 once percent-decoded; percent-encode names as UTF-8"
    )]
    NotUtf8,
    /// No `api-version` query parameter.
    #[error(
        "The api-version query parameter (?api-version=) is required for all requests; add '?api-version=<version>' with the version the Azure REST API reference gives for this operation"
    )]
    MissingApiVersion,
    /// More than one `api-version` query parameter.
    #[error(
        "the api-version query parameter appears {count} times, and Airlock cannot tell which one Azure would use; send it exactly once"
    )]
    DuplicateApiVersion {
        /// How many times it appears.
        count: usize,
    },
    /// An empty or unreadable `api-version` value.
    #[error(
        "the api-version query parameter is empty or malformed; send a version such as '?api-version=2024-03-01'"
    )]
    InvalidApiVersion,
    /// A request body Airlock must read (a batch, a deployment, a move) is not
    /// what Azure accepts.
    #[error("{message}")]
    InvalidContent {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// An inner request of a batch is addressed to a host other than ARM.
    #[error(
        "request {index} of the batch is addressed to '{host}', not to Azure Resource Manager; a batch may only carry requests to ARM (use a relativeUrl or an https://management.azure.com/... url)"
    )]
    BatchForeignHost {
        /// The inner request's position in `requests`, from 0.
        index: usize,
        /// The host it named.
        host: String,
    },
    /// An inner request of a batch is itself a batch.
    #[error(
        "request {index} of the batch is itself a batch; nested batches are not accepted: put its requests in the outer batch"
    )]
    NestedBatch {
        /// The inner request's position in `requests`, from 0.
        index: usize,
    },
    /// An inner request of a batch is malformed.
    #[error("request {index} of the batch: {source}")]
    InBatch {
        /// The inner request's position in `requests`, from 0.
        index: usize,
        /// What is wrong with it.
        source: Box<ClassifyError>,
    },
    /// The request body could not be read from the client.
    #[error("the request body could not be read ({0}); send the request again")]
    BodyUnreadable(String),
    /// A query parameter that decides the operation appears more than once.
    #[error(
        "the '{name}' query parameter appears more than once, and Airlock cannot tell which one Azure would use; send it exactly once"
    )]
    DuplicateParameter {
        /// The parameter (`comp`, `restype`).
        name: &'static str,
    },
}

impl ClassifyError {
    /// The ARM-style error code the client sees.
    pub fn code(&self) -> &'static str {
        match self {
            ClassifyError::MethodOverride { .. } => "MethodOverrideNotAllowed",
            ClassifyError::RelativePath
            | ClassifyError::EncodedSeparator { .. }
            | ClassifyError::DoubleEncoded { .. }
            | ClassifyError::DotSegment { .. }
            | ClassifyError::EmptySegment
            | ClassifyError::PathParameter
            | ClassifyError::Backslash
            | ClassifyError::ControlCharacter
            | ClassifyError::BadEscape
            | ClassifyError::NotUtf8 => "InvalidRequestUri",
            ClassifyError::DuplicateParameter { .. } => "InvalidQueryParameterValue",
            ClassifyError::MissingApiVersion => "MissingApiVersionParameter",
            ClassifyError::DuplicateApiVersion { .. } | ClassifyError::InvalidApiVersion => {
                "InvalidApiVersionParameter"
            }
            ClassifyError::InvalidContent { .. }
            | ClassifyError::BatchForeignHost { .. }
            | ClassifyError::NestedBatch { .. }
            | ClassifyError::BodyUnreadable(_) => "InvalidRequestContent",
            ClassifyError::InBatch { source, .. } => source.code(),
        }
    }

    /// An [`InvalidContent`](ClassifyError::InvalidContent) error.
    pub(crate) fn content(message: impl Into<String>) -> Self {
        ClassifyError::InvalidContent {
            message: message.into(),
        }
    }
}

/// The one conversion into Airlock's error, answered `400` in the ARM shape.
impl From<ClassifyError> for AirlockError {
    fn from(error: ClassifyError) -> Self {
        AirlockError::BadRequest {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_errors_keep_the_inner_code_and_say_which_request() {
        let error = ClassifyError::InBatch {
            index: 2,
            source: Box::new(ClassifyError::MissingApiVersion),
        };
        assert_eq!(error.code(), "MissingApiVersionParameter");
        assert!(
            error
                .to_string()
                .starts_with("request 2 of the batch: The api-version query parameter")
        );
        let airlock = AirlockError::from(error);
        assert_eq!(airlock.status(), 400);
        assert_eq!(airlock.code(), "MissingApiVersionParameter");
    }
}
