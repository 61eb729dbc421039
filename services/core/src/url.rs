//! Database URLs in configuration: putting a password from the environment in, and
//! taking it out again for anything printed.

/// `url` with its password replaced by `pw` (`scheme://user:pw@host...`). A URL
/// without a user part is returned unchanged.
pub fn with_password(url: &str, pw: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or(user);
                format!("{scheme}://{user}:{pw}@{host}")
            }
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// `url` with any password shown as `***`, for logs, errors and `--check-config`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((user, host)) => format!(
                "{scheme}://{}:***@{host}",
                user.split(':').next().unwrap_or(user)
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_go_in_and_never_come_out() {
        assert_eq!(
            redact_url("mysql://otter:secret@h:1"),
            "mysql://otter:***@h:1"
        );
        assert_eq!(
            with_password("mysql://otter@h:1", "pw"),
            "mysql://otter:pw@h:1"
        );
        assert_eq!(with_password("mysql://h:1", "pw"), "mysql://h:1");
    }
}
