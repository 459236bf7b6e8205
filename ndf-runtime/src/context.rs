//! The context a pattern runs in: domain, caller, priority, permissions and
//! attributes.

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

use crate::security::{REDACTED, is_secret_key};

/// An attribute's value: plain text, or a secret the user marked with
/// [`PatternContext::secret`], kept in a [`SecretString`] (zeroed on drop,
/// never shown).
#[derive(Clone)]
enum Value {
    Plain(String),
    Secret(Arc<SecretString>),
}

/// How urgent a run is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Background work.
    Low,
    /// The default.
    #[default]
    Normal,
    /// User-facing work.
    High,
    /// Work that must not wait.
    Critical,
}

/// The context of one run: the domain it learns under, who asked, with which
/// priority and permissions, and free-form attributes.
///
/// Attributes whose key contains `password`, `token`, `key`, `secret` or
/// `credential` (any case) are redacted in `Debug` output and everywhere the
/// runtime writes; the step itself still reads the real value with
/// [`PatternContext::attribute_value`].
///
/// ```
/// use ndf::prelude::*;
///
/// let ctx = PatternContext::new("data_processing")
///     .agent_type("etl")
///     .priority(Priority::High)
///     .permissions(["deploy"])
///     .attribute("region", "eu-west-1")
///     .attribute("api_token", "hunter2");
/// assert_eq!(ctx.attribute_value("region"), Some("eu-west-1"));
/// assert!(!format!("{ctx:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default)]
pub struct PatternContext {
    domain: String,
    agent_type: Option<String>,
    priority: Priority,
    permissions: Vec<String>,
    attributes: Vec<(String, Value)>,
}

impl PatternContext {
    /// A context for runs in `domain`.
    #[allow(
        clippy::inline_always,
        reason = "a call, generic over the domain's type"
    )]
    #[inline(always)]
    pub fn new(domain: impl Into<String>) -> Self {
        Self::in_domain(domain.into())
    }

    /// [`PatternContext::new`], not generic: compiled once, here, rather
    /// than in every crate that makes a context.
    fn in_domain(domain: String) -> Self {
        Self {
            domain,
            ..Self::default()
        }
    }

    /// Sets the kind of agent that runs the pattern.
    #[must_use]
    pub fn agent_type(mut self, agent_type: impl Into<String>) -> Self {
        self.agent_type = Some(agent_type.into());
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Grants permissions (added to those already granted).
    #[must_use]
    pub fn permissions<P: Into<String>>(
        mut self,
        permissions: impl IntoIterator<Item = P>,
    ) -> Self {
        self.permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Sets an attribute, replacing an earlier value of the same key.
    #[must_use]
    pub fn attribute(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key.into(), Value::Plain(value.into()))
    }

    /// Sets a secret attribute, whatever its key: it is never shown, and
    /// steps read it with [`PatternContext::secret_value`].
    ///
    /// ```
    /// use ndf::prelude::*;
    /// use ndf::ExposeSecret as _;
    ///
    /// let ctx = PatternContext::new("billing").secret("stripe", "sk_live_123");
    /// assert!(!format!("{ctx:?}").contains("sk_live_123"));
    /// assert_eq!(ctx.secret_value("stripe").unwrap().expose_secret(), "sk_live_123");
    /// assert_eq!(ctx.attribute_value("stripe"), None);
    /// ```
    #[must_use]
    pub fn secret(self, key: impl Into<String>, value: impl Into<SecretString>) -> Self {
        self.set(key.into(), Value::Secret(Arc::new(value.into())))
    }

    fn set(mut self, key: String, value: Value) -> Self {
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
        self
    }

    /// The domain learning is keyed by.
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The agent type, if set.
    #[must_use]
    pub fn agent(&self) -> Option<&str> {
        self.agent_type.as_deref()
    }

    /// The priority of the run.
    #[must_use]
    pub fn run_priority(&self) -> Priority {
        self.priority
    }

    /// The permissions granted.
    #[must_use]
    pub fn granted_permissions(&self) -> &[String] {
        &self.permissions
    }

    /// The value of an attribute set with [`PatternContext::attribute`],
    /// even when its key marks it secret. Only step code should call this;
    /// everything the runtime writes uses [`Self::redacted_attributes`].
    /// Attributes set with [`PatternContext::secret`] are read with
    /// [`PatternContext::secret_value`].
    #[must_use]
    pub fn attribute_value(&self, key: &str) -> Option<&str> {
        match self.attributes.iter().find(|(k, _)| k == key) {
            Some((_, Value::Plain(v))) => Some(v),
            _ => None,
        }
    }

    /// A secret set with [`PatternContext::secret`].
    #[must_use]
    pub fn secret_value(&self, key: &str) -> Option<&SecretString> {
        match self.attributes.iter().find(|(k, _)| k == key) {
            Some((_, Value::Secret(v))) => Some(v),
            _ => None,
        }
    }

    /// The attributes that may leave the process: plain values whose keys
    /// do not look secret. Secrets are never among them.
    #[cfg(feature = "fleet")]
    pub(crate) fn plain_attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().filter_map(|(k, v)| match v {
            Value::Plain(v) if !is_secret_key(k) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }

    /// The attributes as the runtime may write them: secret values replaced
    /// by `[REDACTED]`.
    pub fn redacted_attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes.iter().map(|(k, v)| {
            let shown = match v {
                Value::Plain(v) if !is_secret_key(k) => v.as_str(),
                _ => REDACTED,
            };
            (k.as_str(), shown)
        })
    }
}

impl fmt::Debug for PatternContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Attrs<'a>(&'a PatternContext);
        impl fmt::Debug for Attrs<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.redacted_attributes()).finish()
            }
        }
        f.debug_struct("PatternContext")
            .field("domain", &self.domain)
            .field("agent_type", &self.agent_type)
            .field("priority", &self.priority)
            .field("permissions", &self.permissions)
            .field("attributes", &Attrs(self))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn debug_redacts_secret_attributes_only() {
        let ctx = PatternContext::new("security")
            .attribute("DB_Password", "pa55")
            .attribute("region", "eu-west-1");
        let shown = format!("{ctx:?}");
        assert!(!shown.contains("pa55"), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
        assert!(shown.contains("eu-west-1"), "{shown}");
        assert_eq!(ctx.attribute_value("DB_Password"), Some("pa55"));
    }

    #[test]
    fn explicit_secrets_are_redacted_whatever_their_key() {
        let ctx = PatternContext::new("billing")
            .secret("vault_ref", "abc-123")
            .attribute("plan", "pro");
        let shown = format!("{ctx:?}");
        assert!(
            !shown.contains("abc-123") && shown.contains("pro"),
            "{shown}"
        );
        assert_eq!(
            ctx.secret_value("vault_ref")
                .map(|s| s.expose_secret().to_owned())
                .as_deref(),
            Some("abc-123")
        );
        assert_eq!(ctx.attribute_value("vault_ref"), None);
        let cloned = ctx.clone();
        assert!(cloned.secret_value("vault_ref").is_some());
    }

    #[test]
    fn attribute_replaces_an_earlier_value() {
        let ctx = PatternContext::new("d")
            .attribute("a", "1")
            .attribute("a", "2");
        assert_eq!(ctx.attribute_value("a"), Some("2"));
        assert_eq!(ctx.redacted_attributes().count(), 1);
    }
}
