//! How Airlock writes times and durations in JSON (approvals, audit events):
//! RFC 3339 timestamps with milliseconds (`2026-11-25T12:00:00.000Z`) and
//! durations in milliseconds. Use with `#[serde(with = "…")]`.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Stamp {
//!     #[serde(with = "airlock_core::serde_time::rfc3339")]
//!     at: SystemTime,
//!     #[serde(with = "airlock_core::serde_time::millis")]
//!     ttl: Duration,
//! }
//! let stamp = Stamp { at: SystemTime::UNIX_EPOCH, ttl: Duration::from_secs(2) };
//! assert_eq!(serde_json::to_string(&stamp).unwrap(), r#"{"at":"1970-01-01T00:00:00.000Z","ttl":2000}"#);
//! ```

/// `SystemTime` as an RFC 3339 string with milliseconds.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t`.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    /// Reads an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// `Option<SystemTime>` as an RFC 3339 string or `null`.
pub mod rfc3339_option {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t`.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 string or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// `Duration` as whole milliseconds.
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `d` in milliseconds (saturating).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
