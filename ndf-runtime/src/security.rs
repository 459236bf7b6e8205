//! Permission checks and redaction of secret-bearing attributes.

/// Substrings that mark an attribute key as secret, compared case-insensitively.
const SECRET_MARKERS: [&str; 5] = ["password", "token", "key", "secret", "credential"];

/// What the runtime writes in place of a secret value.
pub const REDACTED: &str = "[REDACTED]";

/// Whether an attribute with this key holds a secret: its key contains
/// `password`, `token`, `key`, `secret` or `credential`, in any case.
#[must_use]
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| lower.contains(m))
}

/// The permissions among `required` that `granted` lacks, in the order
/// required, without repeats.
pub(crate) fn missing_permissions<'a>(
    required: impl IntoIterator<Item = &'a str>,
    granted: &[String],
) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for perm in required {
        if !granted.iter().any(|g| g == perm) && !missing.iter().any(|m| m == perm) {
            missing.push(perm.to_owned());
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_match_any_case() {
        for key in [
            "password",
            "DB_PASSWORD",
            "apiToken",
            "ssh_key",
            "Secret",
            "aws_credentials",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["region", "user", "tenant"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn missing_permissions_are_deduplicated_in_order() {
        let granted = vec!["read".to_owned()];
        let missing = missing_permissions(["deploy", "read", "admin", "deploy"], &granted);
        assert_eq!(missing, ["deploy", "admin"]);
    }
}
