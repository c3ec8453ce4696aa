//! Why a sign-in could not start or finish.

/// Why a sign-in could not start or finish. Shown to the person signing in
/// (never with a code, token or secret in it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    /// The configuration is wrong.
    #[error("sign-in is misconfigured: {0}")]
    Config(String),
    /// The identity provider could not be reached or read.
    #[error("the identity provider could not be used: {0}")]
    Provider(String),
    /// The callback names no sign-in under way (unknown, used or older than 10 minutes).
    #[error("this sign-in is unknown, already finished or older than 10 minutes; sign in again")]
    UnknownState,
    /// The callback came to another browser than the one that started the sign-in.
    #[error(
        "this sign-in was started in another browser (or its cookies are off); sign in again from this browser"
    )]
    OtherBrowser,
    /// The provider sent the browser back with an error.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The code could not be redeemed.
    #[error("{0}")]
    Token(String),
    /// The ID token failed verification.
    #[error("the ID token was refused: {0}")]
    IdToken(String),
    /// Too many sign-ins are under way.
    #[error("too many sign-ins are under way; try again in a minute")]
    Busy,
    /// The system's random generator failed.
    #[error("no random numbers could be generated for the session")]
    Random,
}
